import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The outbound direction, app socket → peer sidecar, assembled in one place. The same assembly serves
/// the HTTP proxy listener and each explicit upstream bind (which differ only in their router).
enum OutboundProxy {
    static func bind(_ address: HostPortBinding, router: OutboundRouter, pools: PoolSet, logger: Logger) async throws -> any Channel {
        try await ServerBootstrap(group: pools.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    // Plain HTTP/1.1 from the local app (loopback), 400 on malformed requests.
                    try ops.configureHTTPServerPipeline(withErrorHandling: true)
                    // Resolve the destination, lease an mTLS connection that proved the destination's identity, forward.
                    try ops.addHandler(HTTPForwardingHandler(router: router, pool: pools.pool(for: channel.eventLoop), logger: logger))
                }
            }
            .bind(host: address.host, port: address.port).get()
    }
}
