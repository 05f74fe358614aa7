import Logging
import MeshCore
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOSSL
import NIOTLS

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
                        PlainUpstreamConnector(wire: .bytes).connect(app, on: loop).map(\.channel)
                    })
                return
            }
            // The peer sidecar and we agree on HTTP/2 or HTTP/1.1 by ALPN. HTTP/1.1 has our limits (431, 400,
            // head timeout, pipelining order); HTTP/2 runs one forwarder per stream. Each stamps the verified peer
            // identity (read once per connection) and forwards to the app over a pooled connection.
            try ops.addHandler(
                ApplicationProtocolNegotiationHandler { result, channel in
                    let connectionRouter = router.forConnection(channel)
                    let forwarder: HTTPServerSetup.Forwarder = { channel in
                        HTTPForwardingHandler(
                            router: connectionRouter, pool: pools.pool(for: channel.eventLoop), direction: .inbound,
                            metrics: metrics, logger: logger)
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        if case .negotiated("h2") = result {
                            try HTTPServerSetup.configureHTTP2(channel, limits: limits, forwarder: forwarder)
                        } else {
                            try HTTPServerSetup.configureHTTP1(channel, limits: limits, forwarder: forwarder)
                        }
                    }
                })
        }
    }
}
