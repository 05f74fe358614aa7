import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The inbound direction, socket → app, assembled in one place.
enum InboundProxy {
    static func bind(_ address: HostPortBinding, tls: TLSState, router: InboundRouter, pools: PoolSet, logger: Logger) async throws -> any Channel {
        try await ServerBootstrap(group: pools.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    // mTLS, TLS 1.3 only; the peer's chain must verify to our trust bundle (any workload of the domain).
                    try ops.addHandler(NIOSSLServerHandler(
                        context: tls.current.serverContext,
                        customVerificationCallbackWithMetadata: tls.verifier.callback(.anyInTrustDomain)))
                    // HTTP/1.1 parsing, pipelining order, 400 on malformed requests.
                    try ops.configureHTTPServerPipeline(withErrorHandling: true)
                    // Stamp the verified peer identity and forward to the app over a pooled connection.
                    try ops.addHandler(HTTPForwardingHandler(router: router, pool: pools.pool(for: channel.eventLoop), logger: logger))
                }
            }
            .bind(host: address.host, port: address.port).get()
    }
}
