import Logging
import MeshCore
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOSSL

/// The inbound direction, socket → app, assembled in one place.
enum InboundProxy {
    static func bind(
        _ address: HostPort, tls: TLSState, router: InboundRouter, appProtocol: AppProtocol, pools: PoolSet,
        limits: HTTPLimits, metrics: SidecarMetrics, drain: DrainGroup, logger: Logger
    ) async throws -> any Channel {
        try await Listener.bind(address, group: pools.group, drain: drain) { channel in
            let ops = channel.pipeline.syncOperations
            // mTLS, TLS 1.3 only; the peer's chain must verify to our trust bundle (any workload of the domain).
            try ops.addHandler(
                NIOSSLServerHandler(
                    context: tls.current.serverContext,
                    customVerificationCallbackWithMetadata: tls.verifier.callback(.anyInTrustDomain)))
            // A client that stalls the handshake is closed after the handshake timeout.
            try ops.addHandler(
                TLSHandshakeTimeoutHandler(limit: limits.tlsHandshakeTimeout) { metrics.handshakeFailed(.inbound) })
            if appProtocol == .tcp {
                // Opaque TCP: once the peer is verified, relay bytes to the app as they come.
                let app = EndpointTarget(address: router.app, identity: nil)
                try ops.addHandler(
                    TCPRelayHandler(start: .afterTLSHandshake, logger: logger) { loop in
                        PlainUpstreamConnector(speaksHTTP: false).connect(app, on: loop)
                    })
                return
            }
            // HTTP/1.1 with limits: 431 for oversized heads, 400 for malformed ones, head timeout, pipelining order.
            try HTTPServerSetup.configure(ops, limits: limits)
            // Stamp the verified peer identity and forward to the app over a pooled connection.
            try ops.addHandler(
                HTTPForwardingHandler(
                    router: router, pool: pools.pool(for: channel.eventLoop), direction: .inbound, metrics: metrics,
                    logger: logger))
        }
    }
}
