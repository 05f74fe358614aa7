/// The path authorization judges, made canonical first, so that a route cannot be reached under another
/// spelling (`//admin`, `/orders/../admin`, `/%61dmin`, `http://x/admin`): the request target is brought to
/// origin form, unreserved characters are percent-decoded, repeated slashes merged and dot segments resolved
/// (RFC 3986 §5.2.4). Encoded `/` and `\` (`%2F`, `%5C`), which apps decode differently, are refused, as are a
/// fragment and a target that is neither origin nor absolute form. The app is sent the canonical path (with the
/// query as it came), so it serves exactly what was authorized. Matching ignores `;` parameters
/// (`/admin;x` is `/admin`). Paths stay case-sensitive, as HTTP defines them.
enum RequestPath {
    struct Canonical: Equatable {
        /// What the app is sent: the canonical path and the query (`?…`) as it came.
        let target: String
        /// What rules match: the canonical path without `;` parameters.
        let matched: Substring
        /// Whether `target` differs from what came (the request head is rewritten only then).
        let changed: Bool
    }

    static func canonical(_ uri: String) -> Canonical? {
        if let path = alreadyCanonical(uri) { return Canonical(target: uri, matched: path, changed: false) }
        var target = Substring(uri)
        if !target.hasPrefix("/") {
            // absolute form: scheme://authority/path → /path
            guard let scheme = target.range(of: "://") else { return nil }
            let rest = target[scheme.upperBound...]
            target = rest.firstIndex { $0 == "/" || $0 == "?" }.map { rest[$0...] } ?? "/"
            if target.hasPrefix("?") { target = "/" + target }
        }
        if target.contains("#") { return nil }
        let queryStart = target.firstIndex(of: "?")
        let rawPath = queryStart.map { target[..<$0] } ?? target
        let query = queryStart.map { target[$0...] } ?? ""
        guard let decoded = decodeUnreserved(rawPath) else { return nil }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            let bare = segment.prefix { $0 != ";" }
            if bare == "." { continue }
            if bare == ".." {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(segment)
        }
        let trailing = decoded.hasSuffix("/") && !segments.isEmpty ? "/" : ""
        let path = "/" + segments.joined(separator: "/") + trailing
        let matched =
            "/" + segments.map { $0.prefix { $0 != ";" } }.joined(separator: "/") + trailing
        let canonical = path + query
        return Canonical(target: canonical, matched: Substring(matched), changed: canonical != uri)
    }

    /// The common case without a copy: an origin-form target with no `%`, `;`, `#`, `//` or `/.` in its path
    /// is canonical already; its path (before `?`). nil: take the long way.
    private static func alreadyCanonical(_ uri: String) -> Substring? {
        var previous: UInt8 = 0
        var index = uri.utf8.startIndex
        guard uri.utf8.first == UInt8(ascii: "/") else { return nil }
        for byte in uri.utf8 {
            switch byte {
            case UInt8(ascii: "?"): return uri[..<index]
            case UInt8(ascii: "%"), UInt8(ascii: ";"), UInt8(ascii: "#"): return nil
            case UInt8(ascii: "/"), UInt8(ascii: "."): if previous == UInt8(ascii: "/") { return nil }
            default: break
            }
            previous = byte
            index = uri.utf8.index(after: index)
        }
        return uri[...]
    }

    /// `%XX` of an unreserved character decoded, other escapes kept as they are (upper-cased); nil for an
    /// encoded `/` or `\`, or a malformed escape.
    private static func decodeUnreserved(_ path: Substring) -> String? {
        guard path.contains("%") else { return String(path) }
        var out: [UInt8] = []
        var bytes = Array(path.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard bytes.count >= 2, let hi = hex(bytes.removeFirst()), let lo = hex(bytes.removeFirst()) else {
                return nil
            }
            let value = hi << 4 | lo
            if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") { return nil }
            let unreserved =
                (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A) || (value >= 0x30 && value <= 0x39)
                || value == UInt8(ascii: "-") || value == UInt8(ascii: ".") || value == UInt8(ascii: "_")
                || value == UInt8(ascii: "~")
            if unreserved {
                out.append(value)
            } else {
                out += Array(
                    "%\(String(value >> 4, radix: 16, uppercase: true))\(String(value & 0xF, radix: 16, uppercase: true))"
                        .utf8)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
