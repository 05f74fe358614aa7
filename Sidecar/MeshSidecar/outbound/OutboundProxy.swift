import Logging
import MeshCore
import NIOCore
import NIOHTTP1

/// The outbound direction, app socket → peer sidecar, assembled in one place. The same assembly serves
/// the HTTP proxy listener and each explicit upstream bind (which differ only in their router).
enum OutboundProxy {
    static func bind(_ address: HostPort, router: OutboundRouter, pools: PoolSet, logger: Logger) async throws
        -> any Channel
    {
        try await Listener.bind(address, group: pools.group) { channel in
            let ops = channel.pipeline.syncOperations
            // Plain HTTP/1.1 from the local app (loopback), 400 on malformed requests.
            try ops.configureHTTPServerPipeline(withErrorHandling: true)
            // Resolve the destination, lease an mTLS connection that proved its identity, forward.
            try ops.addHandler(
                HTTPForwardingHandler(router: router, pool: pools.pool(for: channel.eventLoop), logger: logger))
        }
    }
}
