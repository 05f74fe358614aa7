import Foundation
import Synchronization

/// Where access-log lines go, without ever blocking the event loop that finished the exchange: lines are kept
/// in memory (at most `maxPendingBytes`; past that they are dropped and counted) and written by `flush`, which the
/// sidecar's telemetry service calls every `flushInterval` and at shutdown — to stdout in one `write(2)` for many
/// requests, or to journald as an entry each with its structured fields.
public final class AccessLogSink: Sendable {
    public static let flushInterval = Duration.milliseconds(100)
    public static let maxPendingBytes = 4 * 1024 * 1024
    private struct Pending {
        var bytes: [UInt8] = []
        var entries: [[(String, String)]] = []
        var size = 0
    }
    private let pending = Mutex(Pending())
    private let target: LogTarget
    private let onDrop: @Sendable (Int) -> Void

    /// `onDrop` hears how many lines were dropped because the output could not keep up.
    public init(target: LogTarget, onDrop: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.target = target
        self.onDrop = onDrop
    }

    /// One access line (a JSON object, without the newline); `fields` are its journal fields.
    public func write(_ line: String, fields: @autoclosure () -> [(String, String)]) {
        let journal = target == .journald
        let entry = journal ? [("MESSAGE", line)] + fields() : []
        let kept = pending.withLock { pending -> Bool in
            guard pending.size + line.utf8.count < Self.maxPendingBytes else { return false }
            pending.size += line.utf8.count + 1
            if journal {
                pending.entries.append(entry)
            } else {
                pending.bytes.append(contentsOf: line.utf8)
                pending.bytes.append(0x0A)
            }
            return true
        }
        if !kept { onDrop(1) }
    }

    /// Writes what is kept (off the event loops).
    public func flush() {
        let taken = pending.withLock { pending -> Pending in
            defer { pending = Pending() }
            return pending
        }
        for entry in taken.entries where Journal.send(entry) != 0 {
            // No journal after all: the line goes to stdout.
            Self.out(Array((entry.first?.1 ?? "").utf8) + [0x0A])
        }
        if !taken.bytes.isEmpty { Self.out(taken.bytes) }
    }

    private static func out(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
