import MeshCore
import Yams

/// A validated `kind: AuthorizationPolicy`: which callers (by service identity) may call which routes of
/// one service. `default: deny` refuses anything no rule allows; `mode: audit` only reports what would have
/// been refused.
public struct AuthorizationPolicy: Sendable, Equatable {
    public let name: ServiceName
    public let spec: Spec

    public struct Spec: Sendable, Equatable, Codable {
        public var service: String
        public var mode: Mode = .enforce
        public var `default`: Default = .deny
        public var rules: [Rule] = []
    }

    public enum Mode: String, Sendable, Equatable, Codable, CaseIterable { case enforce, audit }
    public enum Default: String, Sendable, Equatable, Codable, CaseIterable { case deny, allow }

    public struct Rule: Sendable, Equatable, Codable {
        /// Calling services, or `["*"]` for any workload of the trust domain.
        public var from: [String]
        /// Routes; empty means every route.
        public var to: [Route]
    }

    public typealias Route = RouteMatch

    static func read(_ spec: Node?, name: ServiceName, in document: Node, _ r: inout NodeReader) -> (
        AuthorizationPolicy, [PolicyReference]
    )? {
        guard let spec else {
            r.issue(document, "spec", "is required (at least spec.service)")
            return nil
        }
        let before = r.issues.count
        guard let fields = r.mapping(spec, "spec", allowed: ["service", "mode", "default", "rules"]),
            let serviceNode = r.required(fields, "service", in: spec, "spec"),
            let service = r.serviceName(serviceNode, "spec.service")
        else { return nil }
        var references = [PolicyReference(service: service, subset: nil, at: serviceNode, "spec.service", r.file)]
        var result = Spec(service: service.value)
        if let node = fields["mode"], let mode = r.choice(node, "spec.mode", as: Mode.self) { result.mode = mode }
        if let node = fields["default"], let value = r.choice(node, "spec.default", as: Default.self) {
            result.default = value
        }
        for (index, item) in (fields["rules"].flatMap { r.list($0, "spec.rules") } ?? []).enumerated() {
            let path = "spec.rules[\(index)]"
            guard let rule = r.mapping(item, path, allowed: ["from", "to"]),
                let fromNode = r.required(rule, "from", in: item, path),
                let from = r.list(fromNode, "\(path).from")
            else { continue }
            var callers: [String] = []
            for (i, caller) in from.enumerated() {
                if caller.string == "*" {
                    callers.append("*")
                } else if let name = r.serviceName(caller, "\(path).from[\(i)]") {
                    callers.append(name.value)
                    references.append(
                        PolicyReference(service: name, subset: nil, at: caller, "\(path).from[\(i)]", r.file))
                }
            }
            if callers.isEmpty { r.issue(fromNode, "\(path).from", "must name at least one service (or \"*\")") }
            var routes: [Route] = []
            for (j, routeNode) in (rule["to"].flatMap { r.list($0, "\(path).to") } ?? []).enumerated() {
                guard let value = RouteMatch.read(routeNode, "\(path).to[\(j)]", &r) else { continue }
                routes.append(value)
            }
            result.rules.append(Rule(from: callers, to: routes))
        }
        guard r.issues.count == before else { return nil }
        return (AuthorizationPolicy(name: name, spec: result), references)
    }
}
