import Yams

/// Which requests of a service a rule covers: methods and paths, each list empty or absent meaning all.
/// Paths are exact (`/orders`) or prefixes ending in `*` (`/orders/*`). Shared by AuthorizationPolicy rules and
/// the routes on which a TrafficPolicy lets POST and PATCH be retried.
public struct RouteMatch: Sendable, Equatable, Codable {
    public var methods: [String]?
    public var paths: [String]?

    public init(methods: [String]? = nil, paths: [String]? = nil) {
        self.methods = methods
        self.paths = paths
    }

    static let knownMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ]

    /// Whether a request with `method` and `path` (query included or not) is covered.
    public func matches(method: String, path: String) -> Bool {
        if let methods, !methods.isEmpty, !methods.contains(method) { return false }
        guard let paths, !paths.isEmpty else { return true }
        let bare = path.firstIndex(of: "?").map { path[..<$0] } ?? path[...]
        return paths.contains { pattern in
            pattern.hasSuffix("*") ? bare.hasPrefix(pattern.dropLast()) : bare == pattern
        }
    }

    static func read(_ node: Node, _ path: String, _ r: inout NodeReader) -> RouteMatch? {
        guard let route = r.mapping(node, path, allowed: ["methods", "paths"]) else { return nil }
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
        return value
    }
}
