import NIOCore
import NIOHTTP1

/// Where one request goes: the rewritten head, the endpoint, and headers to add to its response.
struct RoutedRequest: Sendable {
    var head: HTTPRequestHead
    var endpoint: EndpointTarget
    var responseHeaders: [(String, String)] = []
}

/// A traffic direction's routing decision, made per request. Fails with `ProxyError`.
protocol RequestRouter: Sendable {
    func route(_ head: HTTPRequestHead, channel: any Channel) -> EventLoopFuture<RoutedRequest>
}
