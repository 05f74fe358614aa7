/// `--flag value` / `--flag=value` arguments with `MESH_*` environment twins (for systemd env files).
/// A flag on the command line wins over its twin. Every failure is one line naming the flag, the value
/// and what is allowed, for the binaries to print before exiting 64 (EX_USAGE) — before any socket opens.
public struct CommandLineFlags: Sendable {
    private var values: [String: [String]] = [:]
    private var sources: [String: String] = [:]
    private let known: Set<String>
    private var consumed: Set<String> = []

    /// `known` lists flag names without dashes; `repeatable` ones may appear more than once.
    public init(
        arguments: [String],
        environment: [String: String],
        known: Set<String>,
        repeatable: Set<String> = []
    ) throws(MeshError) {
        self.known = known
        var index = 0
        var fromCommandLine: [String: [String]] = [:]
        while index < arguments.count {
            let arg = arguments[index]
            guard arg.hasPrefix("--"), arg.count > 2 else {
                throw MeshError(.invalidConfiguration, "unexpected argument \"\(arg)\": flags are --name VALUE")
            }
            var name = String(arg.dropFirst(2))
            var value: String
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            } else {
                guard index + 1 < arguments.count else {
                    throw MeshError(.invalidConfiguration, "--\(name) needs a value")
                }
                index += 1
                value = arguments[index]
            }
            guard known.contains(name) else {
                let list = known.sorted().map { "--\($0)" }.joined(separator: ", ")
                throw MeshError(.invalidConfiguration, "--\(name) is not a known flag (known: \(list))")
            }
            if fromCommandLine[name] != nil && !repeatable.contains(name) {
                throw MeshError(.invalidConfiguration, "--\(name) \"\(value)\": given more than once")
            }
            fromCommandLine[name, default: []].append(value)
            value = ""
            index += 1
        }
        for name in known {
            if let given = fromCommandLine[name] {
                values[name] = given
                sources[name] = "--\(name)"
            } else if let env = environment[Self.environmentName(name)] {
                values[name] = repeatable.contains(name) ? env.split(separator: ",").map(String.init) : [env]
                sources[name] = Self.environmentName(name)
            }
        }
    }

    /// `outbound` → `MESH_OUTBOUND`, `token-file` → `MESH_TOKEN_FILE`; a twin listing several values of a
    /// repeatable flag may be plural (`label` → `MESH_LABELS`).
    public static func environmentName(_ flag: String) -> String {
        if let plural = pluralTwins[flag] { return plural }
        return "MESH_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static let pluralTwins = ["label": "MESH_LABELS"]

    /// How a value was given, for error messages: `--flag` or `MESH_FLAG`.
    public func source(of name: String) -> String { sources[name] ?? "--\(name)" }

    public func string(_ name: String) -> String? { values[name]?.last }

    public func strings(_ name: String) -> [String] { values[name] ?? [] }

    public func required(_ name: String, _ what: String) throws(MeshError) -> String {
        guard let value = string(name), !value.isEmpty else {
            throw MeshError(.invalidConfiguration, "--\(name) is required: \(what)")
        }
        return value
    }

    /// Converts a value, turning the converter's error into `SOURCE="value": reason`.
    public func parse<T>(_ name: String, _ value: String, _ convert: (String) throws(MeshError) -> T) throws(MeshError)
        -> T
    {
        do { return try convert(value) } catch {
            throw MeshError(error.code, "\(source(of: name))=\"\(value)\": \(error.message)")
        }
    }

    /// `--log-level`: one of swift-log's level names.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public func logLevel(default fallback: String = "info") throws(MeshError) -> String {
        try optional("log-level") { v throws(MeshError) in
            guard Self.logLevels.contains(v) else {
                throw MeshError(.invalidConfiguration, "must be one of \(Self.logLevels.joined(separator: ", "))")
            }
            return v
        } ?? fallback
    }

    /// `--log-target auto|stdout|journald` (auto: journald when systemd connected the output to the journal).
    public func logTarget() throws(MeshError) -> String {
        try optional("log-target") { v throws(MeshError) in
            guard ["auto", "stdout", "journald"].contains(v) else {
                throw MeshError(.invalidConfiguration, "must be auto, stdout or journald")
            }
            return v
        } ?? "auto"
    }

    public func optional<T>(_ name: String, _ convert: (String) throws(MeshError) -> T) throws(MeshError) -> T? {
        guard let value = string(name) else { return nil }
        return try parse(name, value, convert)
    }

    /// An integer flag within `range`; `unit` says what it counts, for the message ("must be 1...100 (unit)").
    public func optionalInt(_ name: String, in range: ClosedRange<Int>, _ unit: String? = nil) throws(MeshError)
        -> Int?
    {
        try optional(name) { v throws(MeshError) in
            guard let n = Int(v), range.contains(n) else {
                throw MeshError(
                    .invalidConfiguration,
                    "must be \(range.lowerBound)...\(range.upperBound)" + (unit.map { " (\($0))" } ?? ""))
            }
            return n
        }
    }

    /// `--help`/`-h` anywhere, or `--version` alone: prints the answer and returns true (the binary then exits 0).
    public static func answeredHelpOrVersion(_ arguments: [String], binary: String, usage: String) -> Bool {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            return true
        }
        if arguments == ["--version"] {
            print("\(binary) \(Meshwork.version)")
            return true
        }
        return false
    }

    /// A duration flag within `range`; `allowed` says the range as users write it (e.g. "2s...10m").
    public func optionalDuration(_ name: String, in range: ClosedRange<Duration>, _ allowed: String) throws(MeshError)
        -> Duration?
    {
        try optional(name) { v throws(MeshError) in
            let d = try Duration(parsing: v)
            guard range.contains(d) else { throw MeshError(.invalidDuration, "must be \(allowed)") }
            return d
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
