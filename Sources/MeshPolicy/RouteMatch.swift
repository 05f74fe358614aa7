import Foundation
import Yams

/// Which requests of a service a rule covers: methods, paths and headers, each absent meaning all. Paths are
/// exact (`/orders`) or prefixes ending in `*` (`/orders/*`); headers must all be present with exactly these
/// values (names in lower case). Shared by AuthorizationPolicy rules, a TrafficPolicy's routes and the routes on
/// which it lets POST and PATCH be retried; the sidecar matches requests with it compiled (`RouteMatcher`).
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

    /// Whether a rule path (a trailing `*` aside) is written the way the sidecar makes request paths canonical
    /// before matching them; one that is not could never match (and a restriction would cover nothing).
    public static func isCanonical(_ pattern: String) -> Bool {
        let path = pattern.hasSuffix("*") ? String(pattern.dropLast()) : pattern
        for bad in ["//", "/./", "/../"] where path.contains(bad) { return false }
        if path.hasSuffix("/.") || path.hasSuffix("/..") { return false }
        func upperHex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes = Array(path.utf8)[...]
        while let byte = bytes.popFirst() {
            if Array(";?#\\".utf8).contains(byte) || byte < 0x20 || byte == 0x7F { return false }
            guard byte == UInt8(ascii: "%") else { continue }
            guard bytes.count >= 2, let hi = upperHex(bytes.removeFirst()), let lo = upperHex(bytes.removeFirst())
            else {
                return false
            }
            let value = Unicode.Scalar(hi << 4 | lo)
            if value == "/" || value == "\\" { return false }
            if ("a"..."z").contains(value) || ("A"..."Z").contains(value) || ("0"..."9").contains(value)
                || "-._~".unicodeScalars.contains(value)
            {
                return false
            }
        }
        return true
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
            for bad in paths where !Self.isCanonical(bad) {
                r.issue(
                    p, "\(path).paths",
                    "\"\(bad)\" is not a canonical path, which requests are matched as: no //, . or .. segments, ;, ?, #, \\, and %XX only for characters other than letters, digits and -._~ (upper-case hex)"
                )
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
