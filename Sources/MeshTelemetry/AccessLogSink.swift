import Foundation
import Synchronization

/// Where access-log lines go. On stdout, lines are gathered and written together (at most `flushBytes` or
/// `flushInterval` apart, and at shutdown), one `write(2)` for many requests; to journald, each line is an entry
/// of its own with its structured fields.
public final class AccessLogSink: Sendable {
    public static let flushBytes = 32 * 1024
    public static let flushInterval = Duration.milliseconds(250)
    private let buffer = Mutex<[UInt8]>([])
    private let target: LogTarget

    public init(target: LogTarget) {
        self.target = target
    }

    /// One access line (a JSON object, without the newline); `fields` are its journal fields.
    public func write(_ line: String, fields: @autoclosure () -> [(String, String)]) {
        if target == .journald, Journal.send([("MESSAGE", line)] + fields()) == 0 { return }
        let full = buffer.withLock { buffer -> [UInt8]? in
            buffer.append(contentsOf: line.utf8)
            buffer.append(0x0A)
            guard buffer.count >= Self.flushBytes else { return nil }
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        if let full { Self.out(full) }
    }

    /// Writes what is gathered (the sidecar calls it every `flushInterval` and when it stops).
    public func flush() {
        let pending = buffer.withLock { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        if !pending.isEmpty { Self.out(pending) }
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
