import CSystemd
import Foundation

/// systemd's journal, written through libsystemd's `sd_journal_sendv`: one entry per call, each field
/// `NAME=value` (names upper-case letters, digits and `_`). Entries keep their fields, so `journalctl
/// MESH_SERVICE=orders TRACE_ID=…` finds them.
public enum Journal {
    /// Whether this process runs under systemd with its output going to the journal (systemd sets
    /// `JOURNAL_STREAM` for units whose stdout or stderr is the journal).
    public static func isStreamTarget(_ environment: [String: String]) -> Bool {
        environment["JOURNAL_STREAM"].map { !$0.isEmpty } ?? false
    }

    /// Sends one entry; returns 0 or a negative errno (no journal socket: -ENOENT / -ECONNREFUSED).
    @discardableResult
    public static func send(_ fields: [(String, String)]) -> Int32 {
        let copies = fields.map { strdup("\($0.0)=\($0.1)") }
        defer { for copy in copies { free(copy) } }
        var vectors = copies.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: $0.map { strlen($0) } ?? 0) }
        return sd_journal_sendv(&vectors, Int32(vectors.count))
    }

    /// syslog priority of a swift-log level (journald's `PRIORITY=`).
    public static func priority(_ level: String) -> Int {
        switch level {
        case "trace", "debug": 7
        case "info": 6
        case "notice": 5
        case "warning": 4
        case "error": 3
        default: 2
        }
    }

    /// A metadata key as a journal field name: `trace_id` → `TRACE_ID`, `peer` → `MESH_PEER`.
    public static func fieldName(_ key: String) -> String {
        let upper = String(
            key.uppercased().unicodeScalars.map { scalar -> Character in
                (("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)) ? Character(scalar) : "_"
            })
        switch upper {
        case "TRACE_ID", "SPAN_ID": return upper
        default: return "MESH_" + upper
        }
    }
}
