import NIOCore
import NIOHTTP1

/// Where one request goes: the rewritten head, the endpoint, headers to add to its response, and the balancer
/// that picked the endpoint (told how the exchange ended).
struct RoutedRequest: Sendable {
    var head: HTTPRequestHead
    var endpoint: EndpointTarget
    var responseHeaders: [(String, String)] = []
    var balancer: RoundRobinBalancer?
    /// The destination's policy as compiled for this version (the seat for timeouts, retries and the rest).
    var policy: DestinationPolicy?
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
}
