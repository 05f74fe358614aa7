import MeshCore
import Yams

/// How a service speaks; the sidecar picks its codecs from this rather than guessing.
public enum ServiceProtocol: String, Sendable, CaseIterable, Codable {
    case http, http2, grpc, tcp
}

/// A validated `kind: Service` document: protocol, ports and the subsets (by instance labels) that
/// traffic policies may split between.
public struct ServicePolicy: Sendable, Equatable {
    public let name: ServiceName
    public let spec: Spec

    public struct Spec: Sendable, Equatable, Codable {
        public var `protocol`: ServiceProtocol = .http
        public var ports: [Port] = []
        public var subsets: [Subset] = []
    }

    public struct Port: Sendable, Equatable, Codable {
        public let name: String?
        public let port: Int
    }

    /// Instances whose registration labels include all of `labels`.
    public struct Subset: Sendable, Equatable, Codable {
        public let name: String
        public let labels: [String: String]

        public init(name: String, labels: [String: String]) {
            self.name = name
            self.labels = labels
        }
    }

    static func read(_ spec: Node?, name: ServiceName, _ r: inout NodeReader) -> ServicePolicy? {
        var result = Spec()
        guard let spec else { return ServicePolicy(name: name, spec: result) }
        let before = r.issues.count
        guard let fields = r.mapping(spec, "spec", allowed: ["protocol", "ports", "subsets"]) else { return nil }
        if let p = fields["protocol"], let value = r.choice(p, "spec.protocol", as: ServiceProtocol.self) {
            result.protocol = value
        }
        for (index, item) in (fields["ports"].flatMap { r.list($0, "spec.ports") } ?? []).enumerated() {
            let path = "spec.ports[\(index)]"
            guard let port = r.mapping(item, path, allowed: ["name", "port"]) else { continue }
            let name = port["name"].flatMap { r.string($0, "\(path).name") }
            if let number = r.required(port, "port", in: item, path).flatMap({
                r.int($0, "\(path).port", in: 1...65535)
            }) {
                result.ports.append(Port(name: name, port: number))
            }
        }
        var seen: Set<String> = []
        for (index, item) in (fields["subsets"].flatMap { r.list($0, "spec.subsets") } ?? []).enumerated() {
            let path = "spec.subsets[\(index)]"
            guard let subset = r.mapping(item, path, allowed: ["name", "labels"]),
                let nameNode = r.required(subset, "name", in: item, path),
                let name = r.string(nameNode, "\(path).name"),
                let labelsNode = r.required(subset, "labels", in: item, path),
                let labels = r.labels(labelsNode, "\(path).labels")
            else { continue }
            if !seen.insert(name).inserted { r.issue(nameNode, "\(path).name", "subset \"\(name)\" is defined twice") }
            result.subsets.append(Subset(name: name, labels: labels))
        }
        return r.issues.count == before ? ServicePolicy(name: name, spec: result) : nil
    }
}

extension NodeReader {
    /// A non-empty mapping of string labels to string values.
    mutating func labels(_ node: Node, _ path: String) -> [String: String]? {
        guard let mapping = node.mapping, !mapping.isEmpty else {
            issue(node, path, "must be a non-empty mapping of label: value")
            return nil
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            guard let k = string(key, path), let v = string(value, join(path, k)) else { return nil }
            result[k] = v
        }
        return result
    }
}
