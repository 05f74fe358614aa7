import MeshCore

/// Traces, access logs and where log lines go (`--otlp-endpoint`, `--trace-sampling`, `--access-log`,
/// `--log-target`), validated once with the other flags.
public struct TelemetryConfiguration: Sendable, Equatable {
    /// The full OTLP/HTTP traces URL (`…/v1/traces`); nil: no spans are made (trace context is still passed on).
    public var tracesEndpoint: String?
    /// The share of new traces sampled here (a parent's decision is always followed).
    public var traceSampling = 0.01
    /// The share of exchanges logged (0: no access log); failures and traced requests are always logged when on.
    public var accessLog = 0.0
    /// `auto` (journald when `JOURNAL_STREAM` is set), `stdout` or `journald`.
    public var logTarget = "auto"

    static let flags: Set<String> = ["otlp-endpoint", "trace-sampling", "access-log", "log-target"]

    init(_ f: CommandLineFlags, environment: [String: String]) throws(MeshError) {
        if let base = try f.optional("otlp-endpoint", { v throws(MeshError) in try Self.url(v) }) {
            tracesEndpoint = Self.traces(base)
        } else if let url = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !url.isEmpty {
            tracesEndpoint = try Self.environment("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
        } else if let url = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !url.isEmpty {
            tracesEndpoint = Self.traces(try Self.environment("OTEL_EXPORTER_OTLP_ENDPOINT", url))
        }
        if let ratio = try f.optional("trace-sampling", { v throws(MeshError) in try Self.share(v) }) {
            traceSampling = ratio
        }
        if let ratio = try f.optional(
            "access-log",
            { v throws(MeshError) -> Double in
                if v == "off" { return 0 }
                if v == "on" || v == "all" { return 1 }
                return try Self.share(v)
            })
        {
            accessLog = ratio
        }
        logTarget = try f.logTarget()
    }

    /// `1%`, `0.5%` or a fraction `0.01`, from 0 to 1.
    static func share(_ text: String) throws(MeshError) -> Double {
        let percent = text.hasSuffix("%")
        guard let number = Double(percent ? String(text.dropLast()) : text), number.isFinite else {
            throw MeshError(.invalidConfiguration, "must be a percentage (1%) or a fraction from 0 to 1 (0.01)")
        }
        let value = percent ? number / 100 : number
        guard (0...1).contains(value) else {
            throw MeshError(.invalidConfiguration, "must be between 0 and 1 (0% and 100%)")
        }
        return value
    }

    /// An `http://` or `https://` URL with a host.
    static func url(_ text: String) throws(MeshError) -> String {
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            if let host = rest.split(separator: "/", maxSplits: 1).first, !host.isEmpty { return text }
        }
        throw MeshError(
            .invalidConfiguration,
            "must be an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318")
    }

    private static func environment(_ name: String, _ value: String) throws(MeshError) -> String {
        do { return try url(value) } catch {
            throw MeshError(.invalidConfiguration, "\(name) \"\(value)\": \(error.message)")
        }
    }

    /// The traces path under a collector's base URL (what OTEL_EXPORTER_OTLP_ENDPOINT means).
    static func traces(_ base: String) -> String {
        (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
    }
}
