import MeshCore

/// Everything `mesh-sidecar` needs, with every default in this one type, validated once at the edge.
public struct SidecarConfiguration: Sendable {
    public var service: ServiceName
    public var control: HostPort
    public var tokenFile: String
    public var app: HostPort
    public var dataDir: String
    public var inbound = HostPort(host: "0.0.0.0", port: 15006)
    /// Address peers dial; defaults to the bound inbound address (127.0.0.1 when that is a wildcard).
    public var advertise: HostPort?
    public var outbound = HostPort(host: "127.0.0.1", port: 15001)
    public var admin = HostPort(host: "127.0.0.1", port: 15000)
    /// Explicit upstream binds: a local port whose every request goes to one service.
    public var upstreams: [(service: ServiceName, listen: HostPort)] = []
    public var trustDomain = TrustDomain.default
    public var logLevel = "info"
    var httpLimits = HTTPLimits()

    static let flags: Set<String> = [
        "service", "control", "token-file", "app", "data-dir", "inbound", "advertise", "outbound", "admin", "upstream",
        "protocol", "trust-domain", "log-level",
    ]

    /// Parses flags and `MESH_*` twins; throws one line naming the flag, the value and what is allowed.
    public init(arguments: [String], environment: [String: String]) throws(MeshError) {
        let f = try CommandLineFlags(
            arguments: arguments, environment: environment, known: Self.flags, repeatable: ["upstream"])
        service = try f.parse("service", try f.required("service", "the name of the service this sidecar fronts")) {
            v throws(MeshError) in try ServiceName(v)
        }
        control = try f.parse("control", try f.required("control", "the control plane address HOST:PORT")) {
            v throws(MeshError) in try HostPort(parsing: v)
        }
        tokenFile = try f.required("token-file", "a file holding the join token from meshctl token create")
        app = try f.parse("app", try f.required("app", "the local app address HOST:PORT")) { v throws(MeshError) in
            try HostPort(parsing: v)
        }
        dataDir = try f.required("data-dir", "a persistent directory for the key, certificate and trust bundle")
        let listen: (String) throws(MeshError) -> HostPort = { v throws(MeshError) in
            try HostPort(parsing: v, allowPortZero: true)
        }
        if let v = try f.optional("inbound", listen) { inbound = v }
        if let v = try f.optional("outbound", listen) { outbound = v }
        if let v = try f.optional("admin", listen) { admin = v }
        advertise = try f.optional("advertise") { v throws(MeshError) in
            let hp = try HostPort(parsing: v)
            guard !hp.isWildcard else {
                throw MeshError(.invalidAddress, "must be an address peers can dial, not a wildcard")
            }
            return hp
        }
        if let td = try f.optional("trust-domain", { v throws(MeshError) in try TrustDomain(v) }) { trustDomain = td }
        if let p = f.string("protocol") {
            _ = try f.parse("protocol", p) { v throws(MeshError) in
                guard v == "http" else {
                    throw MeshError(
                        .invalidConfiguration, "only http is supported in this release (http2 and tcp are planned)")
                }
                return v
            }
        }
        logLevel = try f.logLevel()
        for spec in f.strings("upstream") {
            upstreams.append(
                try f.parse("upstream", spec) { v throws(MeshError) in
                    guard let eq = v.firstIndex(of: "=") else {
                        throw MeshError(.invalidConfiguration, "must be NAME=HOST:PORT")
                    }
                    return (
                        try ServiceName(String(v[..<eq])),
                        try HostPort(parsing: String(v[v.index(after: eq)...]), allowPortZero: true)
                    )
                })
        }
    }
}
