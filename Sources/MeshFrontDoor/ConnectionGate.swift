import MeshCore
import NIOCore
import Synchronization

/// Why the front door closed a connection.
public enum FrontDoorEvent: String, Sendable, CaseIterable {
    /// Accepted while the listener was at `maxConnections` with every connection proven: closed at once.
    case refusedAtCap = "cap"
    /// The oldest connection not proven yet, closed at the cap to make room for a newcomer.
    case evictedAtCap = "evicted"
    /// No TLS handshake (or, on a plaintext listener, no first byte) within the handshake timeout.
    case handshakeTimeout = "handshake_timeout"
    /// No byte either way for the idle timeout.
    case idleTimeout = "idle_timeout"
}

/// One listener's count of open connections and its cap. `admit` is called at accept on the listener's event
/// loop; the connection's close gives the slot back. At the cap, the oldest connection that has not proven itself
/// is closed to make room (`UnprovenQueue`); only when every open connection has proven itself is the newcomer
/// refused. Closings are reported through `onEvent` (the sidecar counts them in its metrics; the control plane
/// logs them).
public final class ConnectionGate: Sendable {
    public let listener: String
    public let limits: ListenerLimits
    private let open = Atomic<Int>(0)
    private let unproven = Mutex(UnprovenQueue())
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

    /// Takes a slot for `channel`, evicting the oldest unproven connection when the listener is full; false (and
    /// the event reported) when it is full of proven ones. An evicted connection holds its slot until its close
    /// completes, so the count may exceed the cap by the evictions in flight.
    func admit(_ channel: any Channel) -> Bool {
        let now = open.wrappingAdd(1, ordering: .relaxed).newValue
        if now > limits.maxConnections {
            guard let oldest = unproven.withLock({ $0.popOldest() }) else {
                open.wrappingSubtract(1, ordering: .relaxed)
                report(.refusedAtCap)
                return false
            }
            report(.evictedAtCap)
            oldest.close(promise: nil)
        }
        unproven.withLock { $0.append(channel) }
        peak.max(now, ordering: .relaxed)
        return true
    }

    /// The connection completed its handshake (or sent its first byte): no longer a candidate for eviction.
    func proven(_ channel: any Channel) { unproven.withLock { $0.remove(channel) } }

    func release(_ channel: any Channel) {
        unproven.withLock { $0.remove(channel) }
        open.wrappingSubtract(1, ordering: .relaxed)
    }

    func report(_ event: FrontDoorEvent) { onEvent(event, self) }
}
