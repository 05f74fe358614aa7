import MeshCore
import NIOHTTP1

/// The outbound route step's result: the destination service a request names (the authority of
/// `http://orders/x` through the HTTP proxy, or a bind's fixed service), and the head rewritten to origin form.
struct LogicalTarget: Hashable, Sendable {
    let service: ServiceName

    /// Reads the destination from `head`, rewriting it for the upstream (origin-form target, a Host header).
    static func route(_ head: inout HTTPRequestHead, fixedService: ServiceName?) throws(ProxyError) -> LogicalTarget {
        let (authority, path) = try split(head)
        let service: ServiceName
        if let fixedService { service = fixedService } else { service = try Self.service(from: authority) }
        head.uri = path
        if head.headers["host"].isEmpty { head.headers.add(name: "host", value: authority ?? service.value) }
        return LogicalTarget(service: service)
    }

    /// Splits absolute-form `http://authority/path` into its parts; origin-form keeps the Host header.
    static func split(_ head: HTTPRequestHead) throws(ProxyError) -> (authority: String?, path: String) {
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
                "request target \"\(uri.prefix(200))\" must be http://SERVICE/path (TLS is the mesh's job: send plain http)"
            )
        }
        let rest = uri.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        return (String(rest[..<slash]), path)
    }

    static func service(from authority: String?) throws(ProxyError) -> ServiceName {
        guard var host = authority, !host.isEmpty else {
            throw ProxyError(.invalidAuthority, "request names no destination: use http://SERVICE/path")
        }
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        do { return try ServiceName(host.lowercased()) } catch {
            throw ProxyError(.invalidAuthority, "\"\(host.prefix(200))\" is not a mesh service name: \(error.message)")
        }
    }
}
