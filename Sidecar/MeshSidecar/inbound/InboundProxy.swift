import Logging
import MeshCore
import NIOCore
import NIOHTTP1
import NIOSSL

/// The inbound direction, socket → app, assembled in one place.
enum InboundProxy {
    static func bind(_ address: HostPort, tls: TLSState, router: InboundRouter, pools: PoolSet, logger: Logger)
        async throws -> any Channel
    {
        try await Listener.bind(address, group: pools.group) { channel in
            let ops = channel.pipeline.syncOperations
            // mTLS, TLS 1.3 only; the peer's chain must verify to our trust bundle (any workload of the domain).
            try ops.addHandler(
                NIOSSLServerHandler(
                    context: tls.current.serverContext,
                    customVerificationCallbackWithMetadata: tls.verifier.callback(.anyInTrustDomain)))
            // HTTP/1.1 parsing, pipelining order, 400 on malformed requests.
            try ops.configureHTTPServerPipeline(withErrorHandling: true)
            // Stamp the verified peer identity and forward to the app over a pooled connection.
            try ops.addHandler(
                HTTPForwardingHandler(router: router, pool: pools.pool(for: channel.eventLoop), logger: logger))
        }
    }
}
