import Logging
import MeshCore
import MeshIdentity
import NIOCore
import NIOHTTP1
import NIOSSL
import X509

/// Inbound routing, one step per stack layer: identity (the caller's verified SPIFFE ID, read once per
/// connection) → access (the service's AuthorizationPolicy, or refusal while the sidecar fails closed) → rate
/// limits → the local app, with the caller's identity in `x-mesh-peer-identity` (any value the caller sent is
/// replaced, so the app can trust it). A refused request never reaches the app.
struct InboundRouter: RequestRouter {
    static let peerIdentityHeader = "x-mesh-peer-identity"
    let app: HostPort
    let policy: SidecarPolicy
    let rateLimiters: PerEventLoop<RateLimiter>
    let metrics: SidecarMetrics
    let logger: Logger
    /// The verified caller's SPIFFE ID for one connection (see `forConnection`); nil when it has none.
    private(set) var peerIdentity: String?
    /// The calling service, when the identity is a workload's.
    private(set) var peerService: String?

    init(
        app: HostPort, policy: SidecarPolicy, rateLimiters: PerEventLoop<RateLimiter>, metrics: SidecarMetrics,
        logger: Logger
    ) {
        self.app = app
        self.policy = policy
        self.rateLimiters = rateLimiters
        self.metrics = metrics
        self.logger = logger
    }

    /// This router for one connection whose TLS handshake has completed: the caller's identity is read from
    /// the validated chain once, not per request (an HTTP/2 connection's streams share it).
    func forConnection(_ channel: any Channel) -> InboundRouter {
        var router = self
        if let chain = try? channel.pipeline.syncOperations.nioSSL_peerValidatedCertificateChain(),
            let der = try? chain.leaf.toDERBytes(), let id = try? Certificate(derEncoded: der).spiffeID()
        {
            router.peerIdentity = id.uri
            router.peerService = id.service?.value
        }
        return router
    }

    func route(_ head: HTTPRequestHead, channel: any Channel) -> RouteDecision {
        let inbound = policy.snapshot.inbound
        var head = head
        // identity: only this sidecar may say who called (also for rules that match headers)
        head.headers.remove(name: Self.peerIdentityHeader)
        // access: who may call which route (judged on the canonical path, which the app is then sent)
        if let refusal = admit(&head, inbound.access) { return .failed(refusal) }
        // rate limits: the caller's own and the service's total
        if let limits = inbound.rateLimits,
            case .limited(let limit, let wait) = rateLimiters[channel.eventLoop].admit(
                caller: peerService, rules: limits, at: .now())
        {
            metrics.access.rateLimited[limit]!.increment()
            var error = ProxyError(
                .rateLimited,
                "\(peerService.map { "service \($0)" } ?? "this caller") is over the \(limit == "total" ? "service's total" : "per-identity") rate limit of \(inbound.service)"
            )
            error.retryAfter = wait
            return .failed(error)
        }
        if let peerIdentity { head.headers.add(name: Self.peerIdentityHeader, value: peerIdentity) }
        // deadline: the caller's sidecar sent the time its caller has left; enforced here toward the app, which
        // sees what is left of it in the same headers
        let plan = ExchangePlan.make(rules: .inbound, requestTimeout: nil, headers: head.headers)
        return .ready(
            RoutedRequest(
                head: head, endpoint: EndpointTarget(address: app, identity: nil), plan: plan,
                idleTimeout: Self.idleTimeout))
    }

    /// nil when the request may go on; else the refusal. Audit mode counts and logs what it would refuse.
    private func admit(_ head: inout HTTPRequestHead, _ access: InboundPolicy.Access) -> ProxyError? {
        switch access {
        case .open:
            return nil
        case .unavailable:
            metrics.authorized(.deny, mode: .enforce)
            return ProxyError(
                .policyUnavailable,
                "this sidecar enforces an AuthorizationPolicy and has not loaded one yet; it refuses requests until the control plane sends its policy"
            )
        case .authorized(let authorizer):
            let decision: Authorizer.Decision
            if let path = RequestPath.canonical(head.uri) {
                if path.changed { head.uri = path.target }
                let headers = head.headers
                decision = authorizer.decide(
                    caller: peerService, method: head.method.rawValue, path: path.matched,
                    header: { headers.first(name: $0) })
            } else if authorizer.mode == .enforce {
                metrics.authorized(.deny, mode: .enforce)
                return ProxyError(
                    .malformedRequest,
                    "the request target cannot be authorized: use an origin-form path without a fragment or an encoded / or \\"
                )
            } else {
                decision = .deny("a request target that cannot be made canonical")
            }
            return enforce(decision, authorizer)
        }
    }

    /// Counts a decision and logs a refusal; audit mode lets it through (logged as one it would have made).
    /// The refusal to answer with, when enforced.
    func enforce(_ decision: Authorizer.Decision, _ authorizer: Authorizer) -> ProxyError? {
        guard case .deny(let why) = decision else {
            metrics.authorized(.allow, mode: authorizer.mode)
            return nil
        }
        metrics.authorized(.deny, mode: authorizer.mode)
        let metadata: Logger.Metadata = ["peer": "\(peerIdentity ?? "none")", "reason": "\(why)"]
        if authorizer.mode == .audit {
            logger.notice("authorization (audit mode) would deny; let through", metadata: metadata)
            return nil
        }
        logger.info("authorization denied", metadata: metadata)
        return ProxyError(.authzDenied, why)
    }

    /// The inbound side's stream idle timeout (the caller's policy governs the caller's side).
    static let idleTimeout = TimeAmount.minutes(5)

    func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError> {
        .success(routed.endpoint)
    }

    /// The caller, from its verified identity (read once per connection); the route is this service.
    func peer(of routed: RoutedRequest?, head: HTTPRequestHead?, cause: String?) -> (PeerLabels, route: String) {
        (PeerLabels(service: peerService ?? "unknown", identity: peerIdentity), policy.service.value)
    }
}
