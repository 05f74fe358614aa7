import MeshCore
import Synchronization

/// Why the front door closed a connection.
public enum FrontDoorEvent: String, Sendable, CaseIterable {
    /// Accepted while the listener was at `maxConnections`: closed at once.
    case refusedAtCap = "cap"
    /// No TLS handshake (or, on a plaintext listener, no first byte) within the handshake timeout.
    case handshakeTimeout = "handshake_timeout"
    /// No byte either way for the idle timeout.
    case idleTimeout = "idle_timeout"
}

/// One listener's count of open connections and its cap. `admit` is called at accept on the listener's event
/// loop (one atomic add); the connection's close gives the slot back. Closings are reported through `onEvent`
/// (the sidecar counts them in its metrics; the control plane logs them).
public final class ConnectionGate: Sendable {
    public let listener: String
    public let limits: ListenerLimits
    private let open = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let onEvent: @Sendable (FrontDoorEvent, ConnectionGate) -> Void

    public init(
        listener: String, limits: ListenerLimits,
        onEvent: @escaping @Sendable (FrontDoorEvent, ConnectionGate) -> Void = { _, _ in }
    ) {
        self.listener = listener
        self.limits = limits
        self.onEvent = onEvent
    }

    /// Connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// The most connections open at once since the last `resetPeak()`.
    public var peakConnections: Int { peak.load(ordering: .relaxed) }

    public func resetPeak() { peak.store(openConnections, ordering: .relaxed) }

    /// Takes a slot; false (and the event reported) when the listener is full.
    func admit() -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        guard now <= limits.maxConnections else {
            open.wrappingSubtract(1, ordering: .relaxed)
            report(.refusedAtCap)
            return false
        }
        peak.max(now, ordering: .relaxed)
        return true
    }

    func release() { open.wrappingSubtract(1, ordering: .relaxed) }

    func report(_ event: FrontDoorEvent) { onEvent(event, self) }
}
