import MeshCore
import MeshPolicy

/// How this sidecar's own service may be called, compiled once per version from its Service, its
/// AuthorizationPolicy and the rate limits of its TrafficPolicy.
struct InboundPolicy: Sendable, Equatable {
    /// Who may call.
    enum Access: Sendable, Equatable {
        /// No AuthorizationPolicy: any workload of the trust domain.
        case open
        case authorized(Authorizer)
        /// This sidecar ran an AuthorizationPolicy and cannot load one now: every request is refused with
        /// 503 `policy_unavailable` until a version arrives (fail closed).
        case unavailable
    }

    let service: ServiceName
    let declaredProtocol: ServiceProtocol?
    let access: Access
    let rateLimits: RateLimitRules?

    init(
        service: ServiceName, declared: ServicePolicy?, authorization: AuthorizationPolicy.Spec?,
        rateLimit: TrafficPolicy.RateLimit?
    ) {
        self.service = service
        declaredProtocol = declared?.spec.protocol
        access = authorization.map { .authorized(Authorizer($0)) } ?? .open
        rateLimits = rateLimit.map(RateLimitRules.init)
    }

    /// The policy of a sidecar that must refuse inbound traffic until a policy arrives.
    static func unavailable(service: ServiceName) -> InboundPolicy {
        InboundPolicy(service: service, access: .unavailable)
    }

    private init(service: ServiceName, access: Access) {
        self.service = service
        declaredProtocol = nil
        self.access = access
        rateLimits = nil
    }

    /// Whether an AuthorizationPolicy refuses requests (audit mode refuses nothing): the sidecar then fails
    /// closed if it ever cannot load one.
    var authorizes: Bool {
        if case .authorized(let a) = access { return a.mode == .enforce }
        return false
    }
}
