import Logging
import MeshFrontDoor
import Synchronization

/// What the control plane's front door closed, counted as it happens and logged at most once per period
/// (a flood of thousands of sockets is one warning line, not thousands). The admin port's metrics
/// (`/metrics`, with the control plane's telemetry) will read the same counts.
final class FrontDoorTally: Sendable {
    private let counts = Mutex<[FrontDoorEvent: Int]>([:])
    private let totals = Mutex<[FrontDoorEvent: Int]>([:])

    func record(_ event: FrontDoorEvent) {
        counts.withLock { $0[event, default: 0] += 1 }
        totals.withLock { $0[event, default: 0] += 1 }
    }

    /// Everything closed since the start, by reason.
    var total: [FrontDoorEvent: Int] { totals.withLock { $0 } }

    /// Logs and clears what was closed since the last call; silent when nothing was.
    func logSinceLast(_ gate: ConnectionGate, logger: Logger) {
        let since = counts.withLock { counts in
            defer { counts = [:] }
            return counts
        }
        guard !since.isEmpty else { return }
        var metadata: Logger.Metadata = [
            "open": "\(gate.openConnections)", "max_connections": "\(gate.limits.maxConnections)",
        ]
        for (event, n) in since { metadata["closed_\(event.rawValue)"] = "\(n)" }
        logger.warning("front door closed connections", metadata: metadata)
    }
}
