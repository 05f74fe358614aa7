#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What an instance may advertise as its host: an IP address, or a DNS name of sane length (RFC 1035: at most
/// 253 characters, labels of 1...63 letters, digits and hyphens, no hyphen at either end).
public enum EndpointHost {
    public static let maxNameLength = 253

    /// Nil if acceptable, else why not (for the refusal's message; the host itself is never echoed whole).
    public static func problem(_ host: String) -> String? {
        if isIPAddress(host) { return nil }
        let utf8 = Array(host.utf8)
        guard !utf8.isEmpty else { return "host is empty" }
        guard utf8.count <= maxNameLength else {
            return "host is \(utf8.count) bytes; an IP address or a DNS name of at most \(maxNameLength) is allowed"
        }
        let name = utf8.last == UInt8(ascii: ".") ? utf8.dropLast() : utf8[...]
        for label in name.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard (1...63).contains(label.count) else {
                return "host \(echoed(host)) has an empty label or one over 63 characters"
            }
            let allowed = label.allSatisfy { c in
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                    || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
            }
            guard allowed, label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-") else {
                return "host \(echoed(host)) is neither an IP address nor a DNS name (letters, digits, hyphens, dots)"
            }
        }
        return nil
    }

    public static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
