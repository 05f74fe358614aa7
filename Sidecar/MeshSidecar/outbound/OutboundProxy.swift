import Logging
import MeshCore
import NIOCore
import NIOExtras
import NIOHTTP1

/// The outbound direction, app socket → peer sidecar, assembled in one place. The same assembly serves
/// the HTTP proxy listener and each explicit upstream bind (which differ only in their router).
enum OutboundProxy {
    static func bind(
        _ address: HostPort, router: OutboundRouter, pools: PoolSet, limits: HTTPLimits, metrics: SidecarMetrics,
        drain: DrainGroup, logger: Logger
    ) async throws -> any Channel {
        try await Listener.bind(address, group: pools.group, drain: drain) { channel in
            let ops = channel.pipeline.syncOperations
            // Plain HTTP/1.1 from the local app, with limits: 431, 400 and the head timeout as inbound.
            try HTTPServerSetup.configure(ops, limits: limits)
            // Resolve the destination, lease an mTLS connection that proved its identity, forward.
            try ops.addHandler(
                HTTPForwardingHandler(
                    router: router, pool: pools.pool(for: channel.eventLoop), direction: .outbound, metrics: metrics,
                    logger: logger))
        }
    }
}
