import ArgumentParser
import Foundation
import MeshAPI
import MeshCore
import MeshPolicy

/// `-f FILE|DIR`, repeatable, shared by validate and apply.
struct FileOptions: ParsableArguments {
    @Option(name: [.short, .customLong("filename")], help: "A policy file or a directory of them (repeatable)")
    var files: [String] = []

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("-f FILE|DIR is required") }
    }

    func read() throws -> [PolicyFiles.Source] {
        do { return try PolicyFiles.read(files) } catch {
            printError(error.message)
            throw ExitCode(64)
        }
    }
}

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check policy files offline: syntax, kinds, fields and ranges, with file:line:column.",
        discussion:
            "References between documents are checked when the files are consistent on their own; `apply --dry-run` checks them against the control plane's current policy."
    )
    @OptionGroup var files: FileOptions

    func run() async throws {
        let (documents, issues) = PolicyFiles.load(try files.read())
        guard issues.isEmpty else {
            print(PolicyErrors(issues: issues).description)
            throw ExitCode(1)
        }
        print(
            "valid: \(documents.count) document\(documents.count == 1 ? "" : "s") (\(documents.map { "\($0.document.key)" }.joined(separator: ", ")))"
        )
    }
}

struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate and store policy files as one new version (all documents or none).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var files: FileOptions
    @Flag(help: "Check against the current policy and show what would change; store nothing") var dryRun = false
    @Flag(help: "Wait until every connected sidecar has applied the new version (exit 1 naming who did not)")
    var wait = false
    @Option(help: "How long --wait waits (max 300s)") var timeout: String = "30s"

    func validate() throws {
        guard let t = try? Duration(parsing: timeout), t > .zero, t <= .seconds(300) else {
            throw ValidationError("--timeout \"\(timeout)\": must be a duration up to 300s")
        }
    }

    func run() async throws {
        var request = Meshwork_V1_ApplyRequest()
        request.files = try files.read().map { source in
            var file = Meshwork_V1_SourceFile()
            file.name = source.name
            file.yaml = source.text
            return file
        }
        request.dryRun = dryRun
        try refuseOversized(request, "the files")
        let response = try await adminCall(global) { [request] c in
            try await Meshwork_V1_Policy.Client(wrapping: c).apply(request)
        }
        try ChangeOutput.print(response, global.output, dryRun: dryRun)
        if wait && !dryRun {
            let converged = try await Status.show(
                version: response.version, wait: try Duration(parsing: timeout), global: global)
            if !converged { throw ExitCode(1) }
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Which sidecars run a policy version: applied by N of M, who lags, who rejected it and why.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "A version (default: the latest)") var version: UInt64 = 0
    @Option(help: "Wait up to this long for every connected sidecar to settle (e.g. 30s; max 300s)")
    var wait: String = "0s"

    func run() async throws {
        guard let w = try? Duration(parsing: wait), w <= .seconds(300) else {
            throw ValidationError("--wait \"\(wait)\": must be a duration up to 300s")
        }
        if !(try await Self.show(version: version, wait: w, global: global)) { throw ExitCode(1) }
    }

    /// Prints the convergence of `version`; true when every connected sidecar applied it.
    static func show(version: UInt64, wait: Duration, global: GlobalOptions) async throws -> Bool {
        var request = Meshwork_V1_StatusRequest()
        request.version = version
        request.waitSeconds = UInt32(wait.components.seconds)
        let r = try await adminCall(global) { [request] c in
            try await Meshwork_V1_Policy.Client(wrapping: c).status(request)
        }
        func item(_ s: Meshwork_V1_SidecarState) -> [String: Any] {
            [
                "instance": s.instance, "service": s.service, "applied_version": s.appliedVersion,
                "rejected_version": s.rejectedVersion, "error": s.error,
            ]
        }
        switch global.output {
        case .json, .yaml:
            let object: [String: Any] = [
                "version": r.version, "connected": r.connected, "applied": r.applied, "converged": r.converged,
                "lagging": r.lagging.map(item), "rejected": r.rejected.map(item),
            ]
            try StructuredOutput.print(object, as: global.output, pretty: false)
        case .table:
            print("version \(r.version): applied by \(r.applied) of \(r.connected) connected sidecars")
            for s in r.rejected {
                print("  rejected by \(s.instance) (runs \(s.appliedVersion)): \(s.error)")
            }
            for s in r.lagging { print("  lagging: \(s.instance) (runs \(s.appliedVersion))") }
        }
        return r.converged
    }
}

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove a policy document, as a new version.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Kind: Service, TrafficPolicy or AuthorizationPolicy") var kind: String
    @Argument(help: "metadata.name of the document") var name: String

    func validate() throws {
        guard PolicyKind(loosely: kind) != nil else { throw ValidationError("unknown kind \(echoed(kind))") }
        try checkName(name)
    }

    func run() async throws {
        var ref = Meshwork_V1_DocumentRef()
        ref.kind = PolicyKind(loosely: kind)!.rawValue
        ref.name = name
        var request = Meshwork_V1_DeleteRequest()
        request.documents = [ref]
        let response = try await adminCall(global) { [request] c in
            try await Meshwork_V1_Policy.Client(wrapping: c).delete(request)
        }
        try ChangeOutput.print(response, global.output, dryRun: false)
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show stored policy: every document, one kind, or one document.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Kind (Service, TrafficPolicy, AuthorizationPolicy; plural and lower case accepted)")
    var kind: String?
    @Argument(help: "metadata.name") var name: String?
    @Option(help: "An earlier version instead of the latest") var version: UInt64 = 0

    func validate() throws {
        if let kind, PolicyKind(loosely: kind) == nil {
            throw ValidationError(
                "unknown kind \(echoed(kind)) (known: \(PolicyKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if let name { try checkName(name) }
    }

    func run() async throws {
        var request = Meshwork_V1_GetRequest()
        request.kind = kind.flatMap(PolicyKind.init(loosely:))?.rawValue ?? ""
        request.name = name ?? ""
        request.version = version
        let response = try await adminCall(global) { [request] c in
            try await Meshwork_V1_Policy.Client(wrapping: c).get(request)
        }
        let documents = try response.documentsJson.map { try JSONSerialization.jsonObject(with: $0) }
        switch global.output {
        case .json:
            try StructuredOutput.print(["version": response.version, "items": documents], as: .json, pretty: true)
        case .yaml:
            print("# version \(response.version)")
            for document in documents {
                print("---")
                try StructuredOutput.print(document, as: .yaml, pretty: true)
            }
        case .table:
            var rows = [["KIND", "NAME", "SERVICE"]]
            for case let d as [String: Any] in documents {
                let name = (d["metadata"] as? [String: Any])?["name"] as? String ?? ""
                let service = (d["spec"] as? [String: Any])?["service"] as? String ?? name
                rows.append([d["kind"] as? String ?? "", name, service])
            }
            print("version \(response.version)")
            Table.print(rows)
        }
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stored policy versions, newest first.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "How many (1...1000)") var limit: UInt32 = 50

    func run() async throws {
        var request = Meshwork_V1_HistoryRequest()
        request.limit = limit
        let response = try await adminCall(global) { [request] c in
            try await Meshwork_V1_Policy.Client(wrapping: c).history(request)
        }
        let time = ISO8601DateFormatter()
        switch global.output {
        case .json, .yaml:
            let items: [[String: Any]] = response.versions.map {
                [
                    "version": $0.version,
                    "created": time.string(from: Date(timeIntervalSince1970: TimeInterval($0.createdUnix))),
                    "author": $0.author, "operation": $0.operation, "summary": $0.summary,
                ]
            }
            try StructuredOutput.print(items, as: global.output, pretty: true)
        case .table:
            var rows = [["VERSION", "CREATED", "AUTHOR", "OPERATION", "CHANGES"]]
            for v in response.versions {
                rows.append([
                    "\(v.version)", time.string(from: Date(timeIntervalSince1970: TimeInterval(v.createdUnix))),
                    v.author,
                    v.operation, v.summary,
                ])
            }
            Table.print(rows)
        }
    }
}

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the documents of an earlier version current again, as a new version.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The version to return to (see: meshctl history)") var version: UInt64

    func run() async throws {
        var request = Meshwork_V1_RollbackRequest()
        request.version = version
        let response = try await adminCall(global) { [request] c in
            try await Meshwork_V1_Policy.Client(wrapping: c).rollback(request)
        }
        try ChangeOutput.print(response, global.output, dryRun: false)
    }
}

/// What an apply, delete or rollback did, kubectl style: `TrafficPolicy/orders configured`.
enum ChangeOutput {
    static func print(_ response: Meshwork_V1_ChangeResponse, _ format: OutputFormat, dryRun: Bool) throws {
        switch format {
        case .json, .yaml:
            let object: [String: Any] = [
                "version": response.version, "created": response.created, "dry_run": dryRun,
                "changes": response.changes.map { ["kind": $0.kind, "name": $0.name, "action": $0.action] },
            ]
            try StructuredOutput.print(object, as: format, pretty: false)
        case .table:
            for change in response.changes {
                Swift.print("\(change.kind)/\(change.name) \(change.action)\(dryRun ? " (dry run)" : "")")
            }
            if dryRun {
                Swift.print("nothing stored (dry run); current version \(response.version)")
            } else {
                Swift.print(
                    response.created
                        ? "version \(response.version)" : "no change; version \(response.version) is current")
            }
        }
    }
}

/// Left-aligned columns separated by two spaces.
enum Table {
    static func print(_ rows: [[String]]) {
        guard let first = rows.first else { return }
        let widths = first.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            let line = row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
            Swift.print(line)
        }
    }
}
