import MeshCore
import MeshIdentity
import NIOCore
import NIOHTTP1
import NIOSSL
import X509

/// Inbound: every request goes to the local app, carrying the caller's verified SPIFFE ID in
/// `x-mesh-peer-identity` (any value the caller sent is replaced, so the app can trust it).
struct InboundRouter: RequestRouter {
    static let peerIdentityHeader = "x-mesh-peer-identity"
    let app: HostPort
    /// The verified caller's SPIFFE ID for one connection (see `forConnection`); nil when it has none.
    private(set) var peerIdentity: String?

    init(app: HostPort) { self.app = app }

    /// This router for one connection whose TLS handshake has completed: the caller's identity is read from
    /// the validated chain once, not per request (an HTTP/2 connection's streams share it).
    func forConnection(_ channel: any Channel) -> InboundRouter {
        var router = self
        if let chain = try? channel.pipeline.syncOperations.nioSSL_peerValidatedCertificateChain(),
            let der = try? chain.leaf.toDERBytes(), let id = try? Certificate(derEncoded: der).spiffeID()
        {
            router.peerIdentity = id.uri
        }
        return router
    }

    func route(_ head: HTTPRequestHead, channel: any Channel) -> RouteDecision {
        var head = head
        head.headers.remove(name: Self.peerIdentityHeader)
        if let peerIdentity { head.headers.add(name: Self.peerIdentityHeader, value: peerIdentity) }
        // deadline: the caller's sidecar sent the time its caller has left; enforced here toward the app, which
        // sees what is left of it in the same headers
        let plan = ExchangePlan.make(rules: .inbound, requestTimeout: nil, headers: head.headers)
        return .ready(
            RoutedRequest(
                head: head, endpoint: EndpointTarget(address: app, identity: nil), plan: plan,
                idleTimeout: Self.idleTimeout))
    }

    /// The inbound side's stream idle timeout (the caller's policy governs the caller's side).
    static let idleTimeout = TimeAmount.minutes(5)

    func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError> {
        .success(routed.endpoint)
    }
}
