import Logging
import MeshTelemetry
import ServiceLifecycle

/// The telemetry's housekeeping: access-log lines kept in memory are written every 100 ms (and when the sidecar
/// stops), and once a minute the series of peers idle for ten minutes are dropped.
struct TelemetryService: Service {
    let sink: AccessLogSink?
    let peers: PeerMetrics
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var ticks = 0
            while true {
                try await Task.sleep(for: AccessLogSink.flushInterval)
                sink?.flush()
                ticks += 1
                if ticks % 600 == 0 {
                    let dropped = peers.dropIdle()
                    if dropped > 0 { logger.debug("dropped idle peer series", metadata: ["peers": "\(dropped)"]) }
                }
            }
        }
        sink?.flush()
    }
}
