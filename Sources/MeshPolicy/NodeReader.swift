import MeshCore
import Yams

/// Reads one YAML document into typed values, collecting every problem with its position and key path
/// instead of stopping at the first. Each kind's reader is written against this.
struct NodeReader {
    let file: String
    private(set) var issues: [PolicyIssue] = []

    init(file: String) { self.file = file }

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
                    key, join(path, name), "unknown field (allowed: \(allowed.joined(separator: ", ")))")
            } else {
                result[name] = value
            }
        }
        return result
    }

    /// The items of a list at `node`.
    mutating func list(_ node: Node, _ path: String) -> [Node]? {
        guard let sequence = node.sequence else {
            issue(node, path, "must be a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func string(_ node: Node, _ path: String) -> String? {
        guard node.scalar != nil, let value = node.string, !value.isEmpty else {
            issue(node, path, "must be a non-empty string")
            return nil
        }
        return value
    }

    mutating func strings(_ node: Node, _ path: String) -> [String]? {
        guard let items = list(node, path) else { return nil }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            guard let value = string(item, "\(path)[\(index)]") else { return nil }
            result.append(value)
        }
        return result
    }

    mutating func int(_ node: Node, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = node.int, range.contains(value) else {
            issue(
                node, path,
                "must be an integer in \(range.lowerBound)...\(range.upperBound) (got \(node.string ?? "?"))")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, _ path: String, in range: ClosedRange<Duration>) -> Duration? {
        do {
            let value = try Duration(parsing: node.string ?? "")
            guard range.contains(value) else {
                issue(
                    node, path,
                    "must be between \(DurationText.format(range.lowerBound)) and \(DurationText.format(range.upperBound)) (got \(node.string ?? "?"))"
                )
                return nil
            }
            return value
        } catch {
            issue(node, path, error.message)
            return nil
        }
    }

    /// One of a fixed set of words, e.g. `round_robin`.
    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, as: T.Type) -> T?
    where T.RawValue == String {
        if let text = node.string, let value = T(rawValue: text) { return value }
        issue(
            node, path,
            "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(node.string ?? "")\")")
        return nil
    }

    mutating func serviceName(_ node: Node, _ path: String) -> ServiceName? {
        do { return try ServiceName(node.string ?? "") } catch {
            issue(node, path, error.message)
            return nil
        }
    }

    mutating func required(_ fields: [String: Node], _ key: String, in parent: Node, _ path: String) -> Node? {
        if let node = fields[key] { return node }
        issue(parent, join(path, key), "is required")
        return nil
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

/// Durations printed the way users write them (`1500ms`, `30s`, `5m`).
enum DurationText {
    static func format(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension PolicyReference {
    init(service: ServiceName, subset: String?, at node: Node, _ keyPath: String, _ file: String) {
        self.init(
            service: service, subset: subset, file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1,
            keyPath: keyPath)
    }
}
