import MeshCore

/// Everything `mesh-control serve` needs, with every default in one place, validated once.
public struct ControlPlaneConfiguration: Sendable {
    public var dataDir: String
    public var listen: HostPort
    /// The loopback admin port: /metrics, /ready, /live.
    public var admin = HostPort(host: "127.0.0.1", port: 7000)
    public var trustDomain: TrustDomain
    /// Lifetime of workload certificates.
    public var certificateLifetime: Duration
    public var logLevel: String
    /// `auto` (journald under systemd's JOURNAL_STREAM), `stdout` or `journald`.
    public var logTarget = "auto"
    /// How long a sidecar's registration lasts without renewal (it renews at a third of this).
    public var leaseTTL: Duration = .seconds(15)
    /// New sidecar streams (policy push, discovery watches) admitted per second once the burst is used up.
    public var admissionRate = 500
    /// The listener's front door: connection cap, handshake and idle timeouts.
    public var listenerLimits = ListenerLimits.controlPlane
    /// Instances one service may have registered at once (a flood from one stolen identity stops here).
    public var maxInstancesPerService = 1000
    /// Distinct instances one connection may register: a sidecar's session registers exactly one.
    public var maxInstancesPerConnection = 1

    public static let flags = Set([
        "data-dir", "listen", "admin", "log-target", "trust-domain", "cert-ttl", "lease-ttl", "admission-rate",
        "log-level",
        "max-instances-per-service", "max-instances-per-connection",
    ]).union(ListenerLimits.flags)

    public init(
        dataDir: String, listen: HostPort = HostPort(host: "127.0.0.1", port: 7443),
        trustDomain: TrustDomain = .default, certificateLifetime: Duration = .seconds(86400), logLevel: String = "info"
    ) {
        self.dataDir = dataDir
        self.listen = listen
        self.trustDomain = trustDomain
        self.certificateLifetime = certificateLifetime
        self.logLevel = logLevel
    }

    /// Parses `serve` flags and their `MESH_*` twins. Throws a one-line `MeshError` for exit 64.
    public init(arguments: [String], environment: [String: String]) throws(MeshError) {
        let flags = try CommandLineFlags(arguments: arguments, environment: environment, known: Self.flags)
        let dataDir = try flags.required("data-dir", "the directory for the CA key, tokens and admin credential")
        self.init(dataDir: dataDir)
        if let listen = try flags.optional(
            "listen", { v throws(MeshError) in try HostPort(parsing: v, allowPortZero: true) })
        {
            self.listen = listen
        }
        if let admin = try flags.optional(
            "admin", { v throws(MeshError) in try HostPort(parsing: v, allowPortZero: true) })
        {
            self.admin = admin
        }
        if let td = try flags.optional("trust-domain", { v throws(MeshError) in try TrustDomain(v) }) {
            trustDomain = td
        }
        if let ttl = try flags.optionalDuration("cert-ttl", in: .seconds(10) ... .seconds(30 * 86400), "10s...720h") {
            certificateLifetime = ttl
        }
        if let lease = try flags.optionalDuration("lease-ttl", in: .seconds(2) ... .seconds(600), "2s...10m") {
            leaseTTL = lease
        }
        if let rate = try flags.optionalInt("admission-rate", in: 1...100_000, "new streams per second") {
            admissionRate = rate
        }
        listenerLimits = try ListenerLimits.controlPlane.overridden(by: flags)
        if let n = try flags.optionalInt("max-instances-per-service", in: 1...1_000_000) {
            maxInstancesPerService = n
        }
        if let n = try flags.optionalInt("max-instances-per-connection", in: 1...10_000) {
            maxInstancesPerConnection = n
        }
        logLevel = try flags.logLevel()
        logTarget = try flags.logTarget()
    }
}
