import MeshPolicy
import NIOHTTP1

/// A `RouteMatch` compiled for the request path, the one matcher every layer uses (authorization rules, a
/// TrafficPolicy's routes, the routes where POST and PATCH may be retried): methods as a short list (comparing two
/// small strings is cheaper than hashing one), exact paths and prefixes kept apart as bytes, headers by exact value.
/// A route for GET covers HEAD too, since most apps answer HEAD with GET's handler.
struct RouteMatcher: Equatable, Sendable {
    private let methods: [String]?
    private let exact: [[UInt8]]
    private let prefixes: [[UInt8]]
    private let headers: [String: String]?

    init(_ match: RouteMatch) {
        methods = match.methods.flatMap { $0.isEmpty ? nil : $0 }
        let paths = match.paths ?? []
        exact = paths.filter { !$0.hasSuffix("*") }.map { Array($0.utf8) }
        prefixes = paths.filter { $0.hasSuffix("*") }.map { Array($0.dropLast().utf8) }
        headers = match.headers
    }

    /// Whether a request with `method`, `path` (without its query) and headers (`header` answers a lower-case
    /// name's first value) is covered.
    func matches(method: String, path: Substring, header: (String) -> String?) -> Bool {
        if let methods, !methods.contains(method), method != "HEAD" || !methods.contains("GET") { return false }
        if !exact.isEmpty || !prefixes.isEmpty {
            let fits =
                path.utf8.withContiguousStorageIfAvailable { bytes in
                    exact.contains { Self.equal(bytes, $0) } || prefixes.contains { Self.starts(bytes, $0) }
                }
                ?? (exact.contains { path.utf8.elementsEqual($0) } || prefixes.contains { path.utf8.starts(with: $0) })
            guard fits else { return false }
        }
        return headers.map { $0.allSatisfy { header($0.key) == $0.value } } ?? true
    }

    /// Whether `head` is covered (its target's path, query left out).
    func matches(_ head: HTTPRequestHead) -> Bool {
        let uri = head.uri
        let path = uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...]
        return matches(method: head.method.rawValue, path: path) { head.headers.first(name: $0) }
    }

    private static func starts(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: [UInt8]) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        for i in prefix.indices where bytes[i] != prefix[i] { return false }
        return true
    }

    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ path: [UInt8]) -> Bool {
        bytes.count == path.count && starts(bytes, path)
    }
}
