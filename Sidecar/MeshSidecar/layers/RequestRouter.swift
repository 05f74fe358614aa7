import NIOCore
import NIOHTTP1

/// Where one request goes: the rewritten head, the endpoint, headers to add to its response, the plan (retry
/// rules, deadline), and the balancer that picked the endpoint (told how each try ended).
struct RoutedRequest: Sendable {
    var head: HTTPRequestHead
    var endpoint: EndpointTarget
    var responseHeaders: [(String, String)] = []
    var balancer: Balancer?
    /// The destination's policy as compiled for this version.
    var policy: DestinationPolicy?
    /// The subset the route or the split chose: retries stay in it.
    var subset: SubsetSelector?
    /// The name of the TrafficPolicy route the request matched, if one did.
    var routeName: String?
    var plan = ExchangePlan.none
    /// No byte either way on the exchange for this long ends it.
    var idleTimeout: TimeAmount
}

/// A route decided at once (the common case: the destination's endpoints are cached), refused, or waiting
/// for discovery's first answer about a destination.
enum RouteDecision {
    case ready(RoutedRequest)
    case failed(ProxyError)
    case pending(EventLoopFuture<RoutedRequest>)
}

/// A traffic direction's routing decision, made per request on the connection's event loop.
protocol RequestRouter: Sendable {
    func route(_ head: HTTPRequestHead, channel: any Channel) -> RouteDecision
    /// The endpoint for a retry of `routed`, one not in `excluding` (already tried) if there is one.
    func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError>
    /// Who an exchange was with and its route, as metrics, spans and logs name them (`routed` is nil when routing
    /// failed with `cause`).
    func peer(of routed: RoutedRequest?, head: HTTPRequestHead?, cause: String?) -> (PeerLabels, route: String)
}

extension ExchangePlan {
    /// The plan for a request: `rules`, and the shorter of the policy's request timeout and the time the caller
    /// said it has left (`x-mesh-timeout-ms`, `grpc-timeout`), counted from the request's arrival.
    static func make(rules: RetryRules?, requestTimeout: TimeAmount?, headers: HTTPHeaders) -> ExchangePlan {
        var plan = ExchangePlan(rules: rules, deadline: nil, timeLimit: requestTimeout)
        if let remaining = DeadlineHeaders.remaining(in: headers), plan.timeLimit.map({ remaining < $0 }) ?? true {
            plan.timeLimit = remaining
            plan.deadlineKind = .deadline
        }
        return plan
    }
}
