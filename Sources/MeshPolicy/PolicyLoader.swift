import MeshCore
import Yams

/// A document as loaded from a file: the typed policy, the names it refers to, and where it starts.
public struct LoadedDocument: Sendable {
    public let document: PolicyDocument
    public let references: [PolicyReference]
    public let file: String
    public let line: Int
}

/// Turns YAML text (one or more `---` documents) into validated policies, or every problem at once.
/// Shape: `apiVersion: meshwork.dev/v1`, `kind`, `metadata.name`, `spec` — as Kubernetes users expect.
/// This checks each document on its own; whether the names it refers to exist is `PolicySet`'s question.
public enum PolicyLoader {
    public static let apiVersion = "meshwork.dev/v1"

    public static func load(yaml: String, file: String) -> Result<[LoadedDocument], PolicyErrors> {
        var nodes: [Node] = []
        do {
            // compose_all is lazy: a syntax error ends the sequence and is kept in `error`, not thrown.
            var sequence = try compose_all(yaml: yaml)
            while let node = sequence.next() { nodes.append(node) }
            if let error = sequence.error { throw error }
        } catch let error as YamlError {
            return .failure(PolicyErrors(issues: [syntaxIssue(error, file: file)]))
        } catch {
            return .failure(
                PolicyErrors(issues: [PolicyIssue(file: file, line: 1, column: 1, keyPath: "", message: "\(error)")]))
        }
        var issues: [PolicyIssue] = []
        var documents: [LoadedDocument] = []
        for node in nodes {
            var reader = NodeReader(file: file)
            if let loaded = read(node, &reader) { documents.append(loaded) }
            issues += reader.issues
        }
        if !issues.isEmpty {
            let sorted = issues.enumerated().sorted { a, b in
                (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
            }
            return .failure(PolicyErrors(issues: sorted.map(\.element)))
        }
        return .success(documents)
    }

    static func read(_ document: Node, _ r: inout NodeReader) -> LoadedDocument? {
        guard let top = r.mapping(document, "", allowed: ["apiVersion", "kind", "metadata", "spec"]) else { return nil }
        if let v = top["apiVersion"] {
            if v.string != apiVersion {
                r.issue(v, "apiVersion", "must be \(apiVersion) (got \(echoed(v.string ?? "")))")
            }
        } else {
            r.issue(document, "apiVersion", "is required (\(apiVersion))")
        }
        let kinds = PolicyKind.allCases.map(\.rawValue).joined(separator: ", ")
        guard let kindNode = top["kind"] else {
            r.issue(document, "kind", "is required (one of \(kinds))")
            return nil
        }
        guard let kind = kindNode.string.flatMap(PolicyKind.init(rawValue:)) else {
            r.issue(kindNode, "kind", "unknown kind \(echoed(kindNode.string ?? "")) (known: \(kinds))")
            return nil
        }
        var name: ServiceName?
        if let meta = top["metadata"], let fields = r.mapping(meta, "metadata", allowed: ["name", "labels"]) {
            if let n = r.required(fields, "name", in: meta, "metadata") {
                do { name = try ServiceName(n.string ?? "") } catch {
                    r.issue(n, "metadata.name", error.message.replacingOccurrences(of: "service name", with: "name"))
                }
            }
            if let labels = fields["labels"] { _ = r.labels(labels, "metadata.labels") }
        } else if top["metadata"] == nil {
            r.issue(document, "metadata.name", "is required")
        }
        // A bad name still gets its spec checked (under a stand-in name), so every problem shows at once.
        guard let name = name ?? (try? ServiceName("invalid-name")) else { return nil }
        let line = document.mark?.line ?? 1
        let named = r.issues.isEmpty
        switch kind {
        case .service:
            guard let policy = ServicePolicy.read(top["spec"], name: name, &r), named else { return nil }
            return LoadedDocument(document: .service(policy), references: [], file: r.file, line: line)
        case .trafficPolicy:
            guard let (policy, refs) = TrafficPolicy.read(top["spec"], name: name, in: document, &r), named else {
                return nil
            }
            return LoadedDocument(document: .traffic(policy), references: refs, file: r.file, line: line)
        case .authorizationPolicy:
            guard let (policy, refs) = AuthorizationPolicy.read(top["spec"], name: name, in: document, &r), named else {
                return nil
            }
            return LoadedDocument(document: .authorization(policy), references: refs, file: r.file, line: line)
        }
    }

    static func syntaxIssue(_ error: YamlError, file: String) -> PolicyIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return PolicyIssue(
                file: file, line: mark.line, column: mark.column, keyPath: "", message: "YAML syntax: \(problem)")
        default:
            return PolicyIssue(file: file, line: 1, column: 1, keyPath: "", message: "YAML syntax: \(error)")
        }
    }
}
