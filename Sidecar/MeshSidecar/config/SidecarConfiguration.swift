import Foundation
import MeshCore
import MeshPolicy

/// Everything `mesh-sidecar` needs, with every default in this one type, validated once at the edge.
public struct SidecarConfiguration: Sendable {
    /// Where the identity and the endpoints come from.
    public enum Mode: Sendable {
        /// Join token → certificate from `mesh-control`, renewed there; endpoints from its discovery.
        case controlPlane(control: HostPort, tokenFile: String, dataDir: String)
        /// Bring your own identity: files written by SPIRE, Vault or a script, watched and reloaded;
        /// endpoints given statically (`--endpoint SERVICE=HOST:PORT`, repeatable).
        case standalone(IdentityFilePaths, endpoints: [ServiceName: [HostPort]])
    }

    public var service: ServiceName
    public var mode: Mode
    public var app: HostPort
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
    /// Each data listener's front door (inbound, outbound, every upstream bind): connection cap, handshake and
    /// idle timeouts. The admin listener has its own, smaller ones (`ListenerLimits.admin`).
    public var listenerLimits = ListenerLimits.sidecar
    /// How long SIGTERM waits for in-flight requests before closing what is left.
    public var drainTimeout: Duration = .seconds(30)
    /// What the app speaks; registered with the instance so callers pick the right relay.
    public var appProtocol = AppProtocol.http
    /// Checked before every lease renewal; a failing app is not served to callers.
    public var healthCheck = AppHealthCheck.tcp
    /// Instance labels registered with discovery (`--label KEY=VALUE`), which a Service's subsets select by.
    public var labels: [String: String] = [:]
    /// Standalone mode's policy (`--policy FILE`): YAML documents as `meshctl validate` reads them, validated here.
    public var policy: [PolicyDocument] = []
    /// Traces, access log, log target.
    public var telemetry: TelemetryConfiguration

    static let flags = Set([
        "service", "control", "token-file", "app", "data-dir", "inbound", "advertise", "outbound", "admin", "upstream",
        "protocol", "trust-domain", "log-level", "cert", "key", "bundle", "endpoint", "drain-timeout", "health-check",
        "policy", "label",
    ]).union(ListenerLimits.flags).union(TelemetryConfiguration.flags)

    /// Parses flags and `MESH_*` twins; throws one line naming the flag, the value and what is allowed.
    public init(arguments: [String], environment: [String: String]) throws(MeshError) {
        let f = try CommandLineFlags(
            arguments: arguments, environment: environment, known: Self.flags,
            repeatable: ["upstream", "endpoint", "label"])
        service = try f.parse("service", try f.required("service", "the name of the service this sidecar fronts")) {
            v throws(MeshError) in try ServiceName(v)
        }
        mode = try Self.mode(f)
        app = try f.parse("app", try f.required("app", "the local app address HOST:PORT")) { v throws(MeshError) in
            try HostPort(parsing: v)
        }
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
        if let p = try f.optional(
            "protocol",
            { v throws(MeshError) in
                guard let value = AppProtocol(rawValue: v) else {
                    throw MeshError(.invalidConfiguration, "must be http, http2 or tcp")
                }
                return value
            })
        {
            appProtocol = p
        }
        if let check = try f.optional("health-check", { v throws(MeshError) in try AppHealthCheck(parsing: v) }) {
            healthCheck = check
        }
        logLevel = try f.logLevel()
        telemetry = try TelemetryConfiguration(f, environment: environment)
        if let drain = try f.optionalDuration("drain-timeout", in: .zero ... .seconds(3600), "0s...1h") {
            drainTimeout = drain
        }
        listenerLimits = try ListenerLimits.sidecar.overridden(by: f)
        if let file = f.string("policy") {
            guard case .standalone = mode else {
                throw MeshError(
                    .invalidConfiguration,
                    "\(f.source(of: "policy")) is for standalone mode; with a control plane, policy comes from meshctl apply"
                )
            }
            policy = try Self.readPolicy(file)
        }
        for spec in f.strings("label") {
            let (key, value) = try f.parse("label", spec) { v throws(MeshError) in try Self.label(v) }
            guard labels.updateValue(value, forKey: key) == nil else {
                throw MeshError(
                    .invalidConfiguration, "\(f.source(of: "label")) \"\(spec)\": label \(key) is given twice")
            }
        }
        if labels.count > 15 {
            throw MeshError(
                .invalidConfiguration,
                "\(f.source(of: "label")): \(labels.count) labels; an instance registers at most 15 (and the mesh's own)"
            )
        }
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

    /// One `KEY=VALUE` instance label: keys as Kubernetes label keys (an optional DNS prefix and `/`, then up to
    /// 63 of letters, digits, `-`, `_`, `.`), values up to 63 of the same; `meshwork.dev/` keys are the mesh's own.
    static func label(_ text: String) throws(MeshError) -> (String, String) {
        guard let eq = text.firstIndex(of: "=") else {
            throw MeshError(.invalidConfiguration, "must be KEY=VALUE, e.g. version=v2")
        }
        let key = String(text[..<eq])
        let value = String(text[text.index(after: eq)...])
        func isName(_ s: Substring, max: Int) -> Bool {
            !s.isEmpty && s.count <= max
                && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        }
        let name = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard key.utf8.count <= 128, name.allSatisfy({ isName($0, max: name.count == 2 && $0 == name[0] ? 253 : 63) }),
            value.isEmpty || isName(value[...], max: 63)
        else {
            throw MeshError(
                .invalidConfiguration,
                "label \"\(key)\" = \"\(value)\": keys and values are letters, digits, -, _ and . (at most 63; a key may have a DNS prefix/, 128 in all)"
            )
        }
        guard !key.hasPrefix("meshwork.dev/") else {
            throw MeshError(.invalidConfiguration, "label keys under meshwork.dev/ are set by the mesh itself")
        }
        return (key, value)
    }

    /// The documents of a policy file, every problem reported as `file:line:column: key.path: message`.
    static func readPolicy(_ file: String) throws(MeshError) -> [PolicyDocument] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw MeshError(.invalidConfiguration, "--policy \(file): cannot read the file")
        }
        switch PolicyLoader.load(yaml: text, file: file) {
        case .success(let loaded): return loaded.map(\.document)
        case .failure(let errors): throw MeshError(.invalidPolicy, "--policy \(file):\n\(errors.description)")
        }
    }

    private static func mode(_ f: CommandLineFlags) throws(MeshError) -> Mode {
        guard let cert = f.string("cert") else {
            if !f.strings("endpoint").isEmpty {
                throw MeshError(
                    .invalidConfiguration,
                    "--endpoint is for standalone mode (with --cert, --key, --bundle); with a control plane, endpoints come from discovery"
                )
            }
            let control = try f.parse(
                "control",
                try f.required(
                    "control", "the control plane address HOST:PORT (or run standalone with --cert, --key, --bundle)")
            ) {
                v throws(MeshError) in try HostPort(parsing: v)
            }
            return .controlPlane(
                control: control,
                tokenFile: try f.required("token-file", "a file holding the join token from meshctl token create"),
                dataDir: try f.required("data-dir", "a persistent directory for the key, certificate and trust bundle"))
        }
        for flag in ["control", "token-file"] where f.string(flag) != nil {
            throw MeshError(
                .invalidConfiguration,
                "\(f.source(of: flag)) cannot be combined with --cert: standalone mode takes its identity from files")
        }
        let paths = IdentityFilePaths(
            cert: cert, key: try f.required("key", "the private key (PEM) for --cert"),
            bundle: try f.required("bundle", "the trust bundle (PEM roots) that peers must chain to"))
        var endpoints: [ServiceName: [HostPort]] = [:]
        for spec in f.strings("endpoint") {
            let (service, address) = try f.parse("endpoint", spec) { v throws(MeshError) in
                guard let eq = v.firstIndex(of: "=") else {
                    throw MeshError(.invalidConfiguration, "must be SERVICE=HOST:PORT")
                }
                return (try ServiceName(String(v[..<eq])), try HostPort(parsing: String(v[v.index(after: eq)...])))
            }
            endpoints[service, default: []].append(address)
        }
        return .standalone(paths, endpoints: endpoints)
    }
}

/// The three files of a brought-in identity.
public struct IdentityFilePaths: Sendable, Equatable {
    public var cert: String
    public var key: String
    public var bundle: String
}

/// How a service's traffic is carried between sidecars (always inside mTLS).
public enum AppProtocol: String, Sendable {
    /// HTTP/1.1 from the app's point of view (the hop between sidecars may still be HTTP/2), parsed: routing,
    /// pooling, error responses, metrics.
    case http
    /// The app serves HTTP/2 without TLS, by prior knowledge (gRPC servers): the inbound sidecar speaks h2c to it.
    case http2
    /// Opaque bytes, relayed as they come (databases, caches, anything not HTTP).
    case tcp

    /// The endpoint label that carries it through discovery.
    public static let label = "meshwork.dev/protocol"
}
