import Logging
import MeshCore
import MeshFrontDoor
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOSSL
import NIOTLS

/// The inbound direction, socket → app, assembled in one place.
enum InboundProxy {
    static func bind(
        _ address: HostPort, tls: TLSState, router: InboundRouter, appProtocol: AppProtocol, pools: PoolSet,
        limits: HTTPLimits, gate: ConnectionGate, metrics: SidecarMetrics, telemetry: ExchangeTelemetry,
        drain: DrainGroup,
        logger: Logger
    ) async throws -> any Channel {
        // accept → a slot under the listener's cap (else closed at once), then per connection:
        try await Listener.bindTLS(
            address, group: pools.group, gate: gate, drain: drain,
            onHandshakeFailure: { metrics.handshakeFailed(.inbound, TLSFailure.reason($0)) }
        ) { channel, guardHandler in
            let ops = channel.pipeline.syncOperations
            // TLS: mTLS 1.3 only; the peer's chain must verify to our trust bundle (any workload of the domain)
            try ops.addHandler(
                NIOSSLServerHandler(
                    context: tls.current.serverContext,
                    customVerificationCallbackWithMetadata: tls.verifier.callback(.anyInTrustDomain)))
            // one TLS record per flush, however many buffers the codecs wrote
            try ops.addHandler(TLSRecordCoalescer())
            // front door: closed if the handshake has not completed in time, or once it carries nothing for the
            // idle timeout
            try ops.addHandler(guardHandler)
            if appProtocol == .tcp {
                // access: once the peer is verified, its service must be allowed to connect (else closed here)
                try ops.addHandler(TCPAuthorizationHandler(router: router))
                // opaque TCP: relay bytes to the app as they come
                let app = EndpointTarget(address: router.app, identity: nil)
                try ops.addHandler(
                    TCPRelayHandler(
                        start: .afterTLSHandshake, logger: logger,
                        counting: (.inbound, metrics.peers, { router.forConnection($0).peerService ?? "unknown" })
                    ) { loop in
                        PlainUpstreamConnector(wire: .bytes).connect(app, on: loop).map(\.channel)
                    })
                return
            }
            // protocol: HTTP/2 or HTTP/1.1 as ALPN settled (HTTP/1.1 with our limits: 431, 400, head timeout)
            try ops.addHandler(
                ApplicationProtocolNegotiationHandler { result, channel in
                    // peer identity: read from the verified chain once per connection, stamped on each request
                    let connectionRouter = router.forConnection(channel)
                    // access and rate limits per request (the router's), then app: one exchange at a time per
                    // connection or stream, over the loop's pool of app connections
                    let forwarder: HTTPServerSetup.Forwarder = { channel, downstream in
                        HTTPForwardingHandler(
                            router: connectionRouter, pool: pools[channel.eventLoop], direction: .inbound,
                            telemetry: telemetry, logger: logger, httpHandlers: downstream.httpHandlers)
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
