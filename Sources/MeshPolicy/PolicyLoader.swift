import MeshCore
import Yams

/// Turns YAML text (one or more `---` documents) into validated policies, or every problem at once.
/// Shape: `apiVersion: meshwork.dev/v1`, `kind`, `metadata.name`, `spec` — as Kubernetes users expect.
public enum PolicyLoader {
    public static let apiVersion = "meshwork.dev/v1"
    /// Kinds this release validates; the others of DESIGN.md are refused by name until they ship.
    static let supportedKinds = ["Service"]
    static let plannedKinds = ["TrafficPolicy", "AuthorizationPolicy"]

    public static func load(yaml: String, file: String) -> Result<[ServicePolicy], PolicyErrors> {
        var issues: [PolicyIssue] = []
        var services: [ServicePolicy] = []
        var documents: [Node] = []
        do {
            // compose_all is lazy: a syntax error ends the sequence and is kept in `error`, not thrown.
            var sequence = try compose_all(yaml: yaml)
            while let node = sequence.next() { documents.append(node) }
            if let error = sequence.error { throw error }
        } catch let error as YamlError {
            return .failure(PolicyErrors(issues: [syntaxIssue(error, file: file)]))
        } catch {
            return .failure(
                PolicyErrors(issues: [PolicyIssue(file: file, line: 1, column: 1, keyPath: "", message: "\(error)")]))
        }
        var seen: [String: Int] = [:]
        for document in documents {
            var context = Context(file: file)
            if let service = context.service(document) {
                if let first = seen[service.name.value] {
                    context.issue(document, "", "Service \"\(service.name)\" is defined twice (first at line \(first))")
                } else {
                    seen[service.name.value] = document.mark?.line ?? 1
                    services.append(service)
                }
            }
            issues += context.issues
        }
        if !issues.isEmpty {
            return .failure(PolicyErrors(issues: issues.sorted { ($0.line, $0.column) < ($1.line, $1.column) }))
        }
        return .success(services)
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

    /// Collects issues while walking one document.
    struct Context {
        let file: String
        var issues: [PolicyIssue] = []

        mutating func issue(_ node: Node, _ path: String, _ message: String) {
            issues.append(
                PolicyIssue(
                    file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, keyPath: path,
                    message: message))
        }

        /// The mapping at `node`, reporting unknown keys against `allowed`.
        mutating func mapping(_ node: Node, _ path: String, allowed: [String]) -> [String: Node]? {
            guard let mapping = node.mapping else {
                issue(node, path, "must be a mapping")
                return nil
            }
            var result: [String: Node] = [:]
            for (key, value) in mapping {
                let name = key.string ?? ""
                if !allowed.contains(name) {
                    issue(
                        key, path.isEmpty ? name : "\(path).\(name)",
                        "unknown field (allowed: \(allowed.joined(separator: ", ")))")
                } else {
                    result[name] = value
                }
            }
            return result
        }

        mutating func service(_ document: Node) -> ServicePolicy? {
            guard let top = mapping(document, "", allowed: ["apiVersion", "kind", "metadata", "spec"]) else {
                return nil
            }
            let issuesBefore = issues.count
            if let v = top["apiVersion"] {
                if v.string != PolicyLoader.apiVersion {
                    issue(v, "apiVersion", "must be \(PolicyLoader.apiVersion) (got \"\(v.string ?? "")\")")
                }
            } else {
                issue(document, "apiVersion", "is required (\(PolicyLoader.apiVersion))")
            }
            guard let kindNode = top["kind"], let kind = kindNode.string else {
                issue(document, "kind", "is required (one of \(PolicyLoader.supportedKinds.joined(separator: ", ")))")
                return nil
            }
            guard PolicyLoader.supportedKinds.contains(kind) else {
                let planned = PolicyLoader.plannedKinds.contains(kind)
                issue(
                    kindNode, "kind",
                    planned
                        ? "\(kind) is not supported by this release yet"
                        : "unknown kind \"\(kind)\" (known: \(PolicyLoader.supportedKinds.joined(separator: ", ")))")
                return nil
            }
            var name: ServiceName?
            if let meta = top["metadata"], let fields = mapping(meta, "metadata", allowed: ["name", "labels"]) {
                if let n = fields["name"] {
                    do { name = try ServiceName(n.string ?? "") } catch { issue(n, "metadata.name", error.message) }
                } else {
                    issue(meta, "metadata.name", "is required")
                }
            } else if top["metadata"] == nil {
                issue(document, "metadata.name", "is required")
            }
            var proto = ServiceProtocol.http
            var ports: [ServicePolicy.Port] = []
            if let spec = top["spec"], let fields = mapping(spec, "spec", allowed: ["protocol", "ports"]) {
                if let p = fields["protocol"] {
                    if let value = p.string.flatMap(ServiceProtocol.init(rawValue:)) {
                        proto = value
                    } else {
                        issue(
                            p, "spec.protocol",
                            "must be one of \(ServiceProtocol.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(p.string ?? "")\")"
                        )
                    }
                }
                if let list = fields["ports"] { ports = self.ports(list) }
            }
            guard issues.count == issuesBefore, let name else { return nil }
            return ServicePolicy(name: name, protocol: proto, ports: ports)
        }

        mutating func ports(_ node: Node) -> [ServicePolicy.Port] {
            guard let sequence = node.sequence else {
                issue(node, "spec.ports", "must be a list")
                return []
            }
            var result: [ServicePolicy.Port] = []
            for (index, item) in sequence.enumerated() {
                let path = "spec.ports[\(index)]"
                guard let fields = mapping(item, path, allowed: ["name", "port"]) else { continue }
                guard let portNode = fields["port"] else {
                    issue(item, "\(path).port", "is required")
                    continue
                }
                guard let number = portNode.int, (1...65535).contains(number) else {
                    issue(portNode, "\(path).port", "must be 1...65535 (got \(portNode.string ?? "?"))")
                    continue
                }
                result.append(ServicePolicy.Port(name: fields["name"]?.string, number: number))
            }
            return result
        }
    }
}
