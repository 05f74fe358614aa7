/// A `host:port` pair as given on the command line: an IPv4 address, a hostname, or `[v6]`.
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; `allowPortZero` is for listen addresses, where 0 asks the kernel for a free port.
    public init(parsing text: String, allowPortZero: Bool = false) throws(MeshError) {
        guard let colon = text.lastIndex(of: ":") else {
            throw MeshError(.invalidAddress, "must be HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(" ") else {
            throw MeshError(.invalidAddress, "must be HOST:PORT (host is empty)")
        }
        let low = allowPortZero ? 0 : 1
        guard let port = Int(text[text.index(after: colon)...]), (low...65535).contains(port) else {
            throw MeshError(.invalidAddress, "port must be \(low)...65535")
        }
        self.host = host
        self.port = port
    }

    /// True for 0.0.0.0 and ::, which are fine to listen on but not to advertise.
    public var isWildcard: Bool { host == "0.0.0.0" || host == "::" }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
