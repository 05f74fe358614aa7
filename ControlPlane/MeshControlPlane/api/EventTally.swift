import Logging
import Synchronization

/// Events counted as they happen (refused registrations, connections the front door closed) and logged as one
/// line of counts at most once per call to `logSinceLast`, which the control plane makes every second: a flood is
/// one warning a second, not thousands. The admin port's metrics (with the control plane's telemetry) will read
/// the same counts.
final class EventTally<Event: Hashable & RawRepresentable & Sendable>: Sendable where Event.RawValue == String {
    private let counts = Mutex<[Event: Int]>([:])
    private let message: Logger.Message

    init(_ message: Logger.Message) { self.message = message }

    func record(_ event: Event) { counts.withLock { $0[event, default: 0] += 1 } }

    /// Logs and clears what was counted since the last call, with `metadata`; silent when nothing was.
    func logSinceLast(_ logger: Logger, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        let since = counts.withLock { counts in
            defer { counts = [:] }
            return counts
        }
        guard !since.isEmpty else { return }
        var all = metadata()
        for (event, n) in since { all[event.rawValue] = "\(n)" }
        logger.warning(message, metadata: all)
    }
}
