/// What every listener of both binaries allows a connection before it proves itself and while it carries
/// nothing: the front door's limits, parsed once from `--max-connections`, `--handshake-timeout`,
/// `--idle-timeout` (and their `MESH_*` twins).
public struct ListenerLimits: Sendable, Equatable {
    /// Open connections per listener; one more is closed at accept and counted.
    public var maxConnections: Int
    /// From accept until the TLS handshake completes (TLS listeners) or the first byte arrives (plaintext).
    public var handshakeTimeout: Duration
    /// A connection with no byte in either direction for this long is closed.
    public var idleTimeout: Duration
    /// Connections the kernel queues before accept: a whole fleet reconnecting at once (capped by the
    /// kernel's `net.core.somaxconn`).
    public var backlog: Int32 = 4096

    public init(maxConnections: Int, handshakeTimeout: Duration = .seconds(10), idleTimeout: Duration) {
        self.maxConnections = maxConnections
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
    }

    /// Sidecar data listeners (inbound, outbound, upstream binds): 4096 connections each; idle an hour
    /// (Envoy's default for HTTP and TCP proxies), so pooled keep-alive connections from apps survive.
    public static let sidecar = ListenerLimits(maxConnections: 4096, idleTimeout: .seconds(3600))
    /// The sidecar's admin listener (loopback: probes and scrapes).
    public static let admin = ListenerLimits(maxConnections: 64, idleTimeout: .seconds(300))
    /// The control plane: one connection per sidecar of the fleet, plus meshctl. A sidecar's session renews its
    /// lease every few seconds; the longest silent call is `meshctl status --wait` (at most 5 minutes). Ten silent
    /// minutes mean a dead or idle peer.
    public static let controlPlane = ListenerLimits(maxConnections: 10_000, idleTimeout: .seconds(600))

    public static let flags: Set<String> = ["max-connections", "handshake-timeout", "idle-timeout"]

    /// These limits with what the flags (or `MESH_*` twins) override.
    public func overridden(by f: CommandLineFlags) throws(MeshError) -> ListenerLimits {
        var limits = self
        if let n = try f.optionalInt("max-connections", in: 1...1_000_000, "connections per listener") {
            limits.maxConnections = n
        }
        if let d = try f.optionalDuration("handshake-timeout", in: .milliseconds(100) ... .seconds(300), "100ms...5m") {
            limits.handshakeTimeout = d
        }
        if let d = try f.optionalDuration("idle-timeout", in: .seconds(1) ... .seconds(86400), "1s...24h") {
            limits.idleTimeout = d
        }
        return limits
    }
}
