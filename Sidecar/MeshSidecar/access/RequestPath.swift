/// The path authorization judges, made canonical first, so that a route cannot be reached under another
/// spelling (`//admin`, `/orders/../admin`, `/%61dmin`, `http://x/admin`): the request target is brought to
/// origin form, unreserved characters are percent-decoded, repeated slashes merged and dot segments resolved
/// (RFC 3986 §5.2.4). Refused, as apps read them differently: encoded `/` and `\` (`%2F`, `%5C`), a literal `\`
/// (WHATWG URL parsers read it as `/`), control bytes, a fragment, and a target that is neither origin nor
/// absolute form. The app is sent the canonical path (with the query as it came), so it serves exactly what was
/// authorized. Matching ignores `;` parameters (`/admin;x` is `/admin`; a segment of parameters only is
/// dropped). Paths stay case-sensitive, as HTTP defines them. Everything works on bytes, not Characters (a
/// combining or prepended scalar must not hide a `/`).
enum RequestPath {
    struct Canonical: Equatable {
        /// What the app is sent: the canonical path and the query (`?…`) as it came.
        let target: String
        /// What rules match: the canonical path without `;` parameters.
        let matched: Substring
        /// Whether `target` differs from what came (the request head is rewritten only then).
        let changed: Bool
    }

    private static let slash = UInt8(ascii: "/")
    private static let dot = UInt8(ascii: ".")
    private static let semicolon = UInt8(ascii: ";")

    static func canonical(_ uri: String) -> Canonical? {
        if let path = alreadyCanonical(uri) { return Canonical(target: uri, matched: path, changed: false) }
        var bytes = Array(uri.utf8)[...]
        if bytes.first != slash {
            // absolute form: scheme://authority/path → /path
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes[colon...].starts(with: "://".utf8) else {
                return nil
            }
            let rest = bytes[(colon + 3)...]
            bytes = rest.firstIndex { $0 == slash || $0 == UInt8(ascii: "?") }.map { rest[$0...] } ?? [slash][...]
            if bytes.first == UInt8(ascii: "?") { bytes = ([slash] + bytes)[...] }
        }
        guard !bytes.contains(UInt8(ascii: "#")) else { return nil }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        let query = bytes[queryStart...]
        guard let decoded = decodeUnreserved(bytes[..<queryStart]) else { return nil }
        var segments: [ArraySlice<UInt8>] = []
        var endsInSlash = decoded.last == slash
        for segment in decoded.split(separator: slash, omittingEmptySubsequences: true) {
            let bare = segment.prefix { $0 != semicolon }
            if bare.elementsEqual([dot]) || bare.elementsEqual([dot, dot]) {
                if bare.count == 2, !segments.isEmpty { segments.removeLast() }
                endsInSlash = true  // `/a/.` and `/a/b/..` are `/a/`
                continue
            }
            endsInSlash = decoded.last == slash
            segments.append(segment)
        }
        let trailing: [UInt8] = endsInSlash && !segments.isEmpty ? [slash] : []
        let path = [slash] + Array(segments.joined(separator: [slash])) + trailing
        let matchedSegments = segments.map { $0.prefix { $0 != semicolon } }.filter { !$0.isEmpty }
        let matched = [slash] + Array(matchedSegments.joined(separator: [slash])) + trailing
        let target = String(decoding: path + query, as: UTF8.self)
        return Canonical(
            target: target, matched: Substring(String(decoding: matched, as: UTF8.self)), changed: target != uri)
    }

    /// Bytes no path may carry: a literal `\`, controls (below 0x20, and 0x7F).
    private static func forbidden(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte < 0x20 || byte == 0x7F
    }

    /// The common case without a copy: an origin-form target with no `%`, `;`, `#`, `\`, control byte, `//` or `/.`
    /// in its path, and no `#` after it, is canonical already; its path (before `?`). nil: take the long way.
    private static func alreadyCanonical(_ uri: String) -> Substring? {
        guard uri.utf8.first == slash else { return nil }
        var previous: UInt8 = 0
        var index = uri.utf8.startIndex
        for byte in uri.utf8 {
            switch byte {
            case UInt8(ascii: "?"):
                return uri.utf8[index...].contains(UInt8(ascii: "#")) ? nil : uri[..<index]
            case UInt8(ascii: "%"), semicolon, UInt8(ascii: "#"): return nil
            case slash, dot: if previous == slash { return nil }
            default: if forbidden(byte) { return nil }
            }
            previous = byte
            index = uri.utf8.index(after: index)
        }
        return uri[...]
    }

    /// `%XX` of an unreserved character decoded, other escapes kept (upper-cased); nil for an encoded `/` or `\`,
    /// a malformed escape, or a forbidden byte.
    private static func decodeUnreserved(_ path: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        var bytes = path
        while let byte = bytes.popFirst() {
            if forbidden(byte) { return nil }
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard bytes.count >= 2, let hi = hex(bytes.removeFirst()), let lo = hex(bytes.removeFirst()) else {
                return nil
            }
            let value = hi << 4 | lo
            if value == slash || value == UInt8(ascii: "\\") { return nil }
            let unreserved =
                (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A) || (value >= 0x30 && value <= 0x39)
                || value == UInt8(ascii: "-") || value == dot || value == UInt8(ascii: "_")
                || value == UInt8(ascii: "~")
            if unreserved {
                out.append(value)
            } else {
                out += [UInt8(ascii: "%"), upperHex(value >> 4), upperHex(value & 0xF)]
            }
        }
        return out
    }

    private static func upperHex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
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
