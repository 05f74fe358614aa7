import MeshControlClient
import MeshCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Outbound: the request's authority names the destination service (`http://orders/x` through the HTTP
/// proxy, or a fixed service for an upstream bind); an endpoint is picked round-robin from discovery and
/// must prove exactly `spiffe://<td>/svc/<service>`.
struct OutboundRouter: RequestRouter {
    static let upstreamIdentityHeader = "x-mesh-upstream-identity"
    let cache: EndpointCache
    let trustDomain: TrustDomain
    /// Set for an upstream bind: every request goes to this service.
    let fixedService: ServiceName?
    private let counter = NIOLockedValueBox(0)

    init(cache: EndpointCache, trustDomain: TrustDomain, fixedService: ServiceName? = nil) {
        self.cache = cache
        self.trustDomain = trustDomain
        self.fixedService = fixedService
    }

    func route(_ head: HTTPRequestHead, channel: any Channel) -> EventLoopFuture<RoutedRequest> {
        let eventLoop = channel.eventLoop
        var head = head
        let service: ServiceName
        do {
            let (authority, path) = try Self.split(head)
            service = try fixedService ?? Self.service(from: authority)
            head.uri = path
            if head.headers["host"].isEmpty { head.headers.add(name: "host", value: authority ?? service.value) }
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let expected = SPIFFEID.workload(service, in: trustDomain)
        return cache.resolve(service, on: eventLoop).flatMapThrowing { snapshot in
            guard snapshot.known else {
                throw ProxyError(
                    .unknownService, "no service named \"\(service)\" is registered with the control plane")
            }
            guard !snapshot.endpoints.isEmpty else {
                throw ProxyError(.noEndpoints, "service \"\(service)\" has no endpoints")
            }
            let index = counter.withLockedValue {
                $0 &+= 1; return $0
            }
            let endpoint = snapshot.endpoints[index % snapshot.endpoints.count]
            return RoutedRequest(
                head: head, endpoint: EndpointTarget(address: endpoint.address, identity: expected),
                responseHeaders: [(Self.upstreamIdentityHeader, expected.uri)])
        }
    }

    /// Splits absolute-form `http://authority/path` into its parts; origin-form keeps the Host header.
    static func split(_ head: HTTPRequestHead) throws -> (authority: String?, path: String) {
        if head.method == .CONNECT {
            throw ProxyError(
                .unsupportedRequest,
                "CONNECT tunnels are not supported yet; send plain http:// requests through the proxy")
        }
        let uri = head.uri
        if uri.hasPrefix("/") { return (head.headers.first(name: "host"), uri) }
        guard uri.lowercased().hasPrefix("http://") else {
            throw ProxyError(
                .invalidAuthority,
                "request target \"\(uri)\" must be http://SERVICE/path (TLS is the mesh's job: send plain http)")
        }
        let rest = uri.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        return (String(rest[..<slash]), path)
    }

    static func service(from authority: String?) throws -> ServiceName {
        guard var host = authority, !host.isEmpty else {
            throw ProxyError(.invalidAuthority, "request names no destination: use http://SERVICE/path")
        }
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        do { return try ServiceName(host.lowercased()) } catch {
            throw ProxyError(.invalidAuthority, "\"\(host)\" is not a mesh service name: \(error.message)")
        }
    }
}
