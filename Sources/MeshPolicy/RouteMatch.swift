import Yams

/// Which requests of a service a rule covers: methods, paths and headers, each absent meaning all. Paths are
/// exact (`/orders`) or prefixes ending in `*` (`/orders/*`); headers must all be present with exactly these
/// values (names in lower case). Shared by AuthorizationPolicy rules, a TrafficPolicy's routes and the routes on
/// which it lets POST and PATCH be retried.
public struct RouteMatch: Sendable, Equatable, Codable {
    public var methods: [String]?
    public var paths: [String]?
    public var headers: [String: String]?

    public init(methods: [String]? = nil, paths: [String]? = nil, headers: [String: String]? = nil) {
        self.methods = methods
        self.paths = paths
        self.headers = headers
    }

    static let knownMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ]

    /// Whether a request with `method`, `path` (query included or not) and headers (`header` answers a lower-case
    /// name's first value) is covered.
    public func matches(method: String, path: String, header: (String) -> String? = { _ in nil }) -> Bool {
        // HEAD is answered by GET's handler in most apps: a route for GET covers it too.
        if let methods, !methods.isEmpty, !methods.contains(method),
            method != "HEAD" || !methods.contains("GET")
        {
            return false
        }
        if let headers, !headers.allSatisfy({ header($0.key) == $0.value }) { return false }
        guard let paths, !paths.isEmpty else { return true }
        let bare = path.firstIndex(of: "?").map { path[..<$0] } ?? path[...]
        return paths.contains { pattern in
            pattern.hasSuffix("*") ? bare.hasPrefix(pattern.dropLast()) : bare == pattern
        }
    }

    static func read(_ node: Node, _ path: String, _ r: inout NodeReader) -> RouteMatch? {
        guard let route = r.mapping(node, path, allowed: ["methods", "paths", "headers"]) else { return nil }
        var value = RouteMatch()
        if let m = route["methods"], let methods = r.strings(m, "\(path).methods") {
            for bad in methods where !Self.knownMethods.contains(bad) {
                r.issue(m, "\(path).methods", "unknown method \"\(bad)\" (use upper case: GET, POST, …)")
            }
            value.methods = methods
        }
        if let p = route["paths"], let paths = r.strings(p, "\(path).paths") {
            for bad in paths where !bad.hasPrefix("/") || bad.dropLast().contains("*") {
                r.issue(p, "\(path).paths", "\"\(bad)\" must start with / and may end with * only")
            }
            value.paths = paths
        }
        if let h = route["headers"], let headers = r.labels(h, "\(path).headers") {
            for name in headers.keys where name != name.lowercased() || name.contains(where: { $0 == ":" || $0 == " " })
            {
                r.issue(h, "\(path).headers", "header name \"\(name)\" must be lower case, without \":\" or spaces")
            }
            value.headers = headers
        }
        return value
    }
}
