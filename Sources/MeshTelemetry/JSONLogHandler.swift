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
        if MeshLogging.target == .journald {
            var entry: [(String, String)] = [
                ("MESSAGE", "\(event.message)"), ("PRIORITY", "\(Journal.priority(event.level.rawValue))"),
                ("SYSLOG_IDENTIFIER", MeshLogging.identifier), ("MESH_LOGGER", label),
            ]
            if let service = MeshLogging.service { entry.append(("MESH_SERVICE", service)) }
            for key in fields.keys.sorted() { entry.append((Journal.fieldName(key), fields[key]!)) }
            if Journal.send(entry) == 0 { return }
        }
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    /// `2026-11-29T21:54:26.917Z`. The part up to the second is formatted once a second (access lines ask for one
    /// per request).
    public static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = Int(now.tv_sec)
        let prefix = secondPrefix.withLock { cached -> String in
            if cached.second == second { return cached.prefix }
            var t = time_t(second)
            var tm = tm()
            gmtime_r(&t, &tm)
            let made = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec)
            cached = (second, made)
            return made
        }
        let ms = Int(now.tv_nsec) / 1_000_000
        return prefix + (ms < 10 ? ".00" : ms < 100 ? ".0" : ".") + String(ms) + "Z"
    }

    private static let secondPrefix = Mutex<(second: Int, prefix: String)>((-1, ""))

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

/// Where log lines go: one JSON object per line on stdout, or journald entries with structured fields.
public enum LogTarget: String, Sendable {
    case stdout, journald

    /// `--log-target stdout|journald|auto` (auto, the default: journald when systemd connected our output to
    /// the journal, i.e. `JOURNAL_STREAM` is set).
    public static func resolve(_ flag: String?, environment: [String: String]) -> LogTarget? {
        switch flag ?? "auto" {
        case "auto": Journal.isStreamTarget(environment) ? .journald : .stdout
        case let other: LogTarget(rawValue: other)
        }
    }
}

public enum MeshLogging {
    private static let current = Mutex(Logger.Level.info)
    private static let settings = Mutex<(target: LogTarget, service: String?, identifier: String)>(
        (.stdout, nil, "meshwork"))

    public static var target: LogTarget { settings.withLock { $0.target } }
    /// The service this process serves (journald's `MESH_SERVICE=`), and the program (`SYSLOG_IDENTIFIER=`).
    public static var service: String? { settings.withLock { $0.service } }
    public static var identifier: String { settings.withLock { $0.identifier } }

    /// Sets where lines go, before or after `bootstrap`.
    public static func configure(target: LogTarget, service: String?, identifier: String) {
        settings.withLock { $0 = (target, service, identifier) }
    }

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
