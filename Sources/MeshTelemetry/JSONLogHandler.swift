import Foundation
import Logging
import Synchronization

/// One JSON object per line on stdout (journald captures stdout of units; structured fields survive).
/// Lines are written with a single `write(2)`, so concurrent loggers never interleave within a line.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String) {
        self.label = label
    }

    /// The process-wide level (`MeshLogging.level`), so an admin call changes every logger at once.
    public var logLevel: Logger.Level {
        get { MeshLogging.level }
        set { MeshLogging.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata { fields[k] = "\(v)" }
        for (k, v) in event.metadata ?? [:] { fields[k] = "\(v)" }
        var line =
            "{\"ts\":\(Self.quote(Self.timestamp())),\"level\":\(Self.quote(event.level.rawValue)),\"logger\":\(Self.quote(label)),\"msg\":\(Self.quote("\(event.message)"))"
        for key in fields.keys.sorted() { line += ",\(Self.quote(key)):\(Self.quote(fields[key]!))" }
        line += "}\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    static func timestamp() -> String {
        let now = Date()
        var t = time_t(now.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = Int(now.timeIntervalSince1970 * 1000) % 1000
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, ms)
    }

    /// JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

public enum MeshLogging {
    private static let current = Mutex(Logger.Level.info)

    /// The level every Meshwork logger uses; changing it takes effect at once (admin `/loglevel`).
    public static var level: Logger.Level {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    /// Installs JSON logging at `level` for the whole process. Call once, first thing in main.
    public static func bootstrap(level: Logger.Level) {
        self.level = level
        LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
    }

    /// Parses `trace|debug|info|notice|warning|error|critical`.
    public static func level(parsing text: String) -> Logger.Level? { Logger.Level(rawValue: text) }
}
