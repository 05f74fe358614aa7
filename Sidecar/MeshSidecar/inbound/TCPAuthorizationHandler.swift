import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Opaque TCP has no requests to judge: a TCP service's AuthorizationPolicy is applied once per connection,
/// when the TLS handshake has proven the caller's identity. A refused connection is closed before the relay to
/// the app opens (the app never sees it), and counted. Sits just before the relay, which starts on the same event.
final class TCPAuthorizationHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    private let router: InboundRouter

    init(router: InboundRouter) { self.router = router }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let connection = router.forConnection(context.channel)
        if let refusal = connection.admitConnection() {
            router.metrics.proxyError(.inbound, refusal.cause, peer: connection.peerService ?? "unknown")
            router.logger.info(
                "TCP connection closed after the handshake",
                metadata: ["peer": "\(connection.peerIdentity ?? "none")", "reason": "\(refusal)"])
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

extension InboundRouter {
    /// nil when this connection's caller may use the TCP service; else the refusal (counted as a decision).
    func admitConnection() -> ProxyError? {
        switch policy.snapshot.inbound.access {
        case .open:
            return nil
        case .unavailable:
            metrics.authorized(.deny, mode: .enforce)
            return ProxyError(.policyUnavailable, "no AuthorizationPolicy loaded yet (fail closed)")
        case .authorized(let authorizer):
            return enforce(authorizer.decideConnection(caller: peerService), authorizer)
        }
    }
}
