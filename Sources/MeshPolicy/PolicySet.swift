import Foundation
import MeshCore

/// The whole policy at one version: every document by kind and name. Applying documents yields a new set
/// only if the result is consistent — every service and subset named is defined, one TrafficPolicy and one
/// AuthorizationPolicy per service — so a set that exists is always one the sidecars can use.
public struct PolicySet: Sendable, Equatable {
    public private(set) var documents: [PolicyKey: PolicyDocument] = [:]

    public init(_ documents: [PolicyDocument] = []) {
        for document in documents { self.documents[document.key] = document }
    }

    public var sorted: [PolicyDocument] { documents.keys.sorted().map { documents[$0]! } }

    public enum Change: String, Sendable, Codable { case created, configured, unchanged, deleted }

    /// The set with `loaded` created or replaced by key, and what happened to each; or every problem.
    public func applying(_ loaded: [LoadedDocument]) -> Result<(PolicySet, [(PolicyKey, Change)]), PolicyErrors> {
        var next = self
        var changes: [(PolicyKey, Change)] = []
        var issues: [PolicyIssue] = []
        var firstSeen: [PolicyKey: LoadedDocument] = [:]
        for item in loaded {
            let key = item.document.key
            if let first = firstSeen[key] {
                issues.append(
                    PolicyIssue(
                        file: item.file, line: item.line, column: 1, keyPath: "metadata.name",
                        message: "\(key) is defined twice in this apply (first at \(first.file):\(first.line))"))
                continue
            }
            firstSeen[key] = item
            let change: Change =
                switch documents[key] {
                case nil: .created
                case item.document: .unchanged
                default: .configured
                }
            next.documents[key] = item.document
            changes.append((key, change))
        }
        issues += next.problems(locatedBy: loaded)
        guard issues.isEmpty else { return .failure(PolicyErrors(issues: issues)) }
        return .success((next, changes))
    }

    /// What becomes of each document when this set is replaced by `other` (a rollback).
    public func changes(to other: PolicySet) -> [(PolicyKey, Change)] {
        Set(documents.keys).union(other.documents.keys).sorted().map { key in
            switch (documents[key], other.documents[key]) {
            case (nil, _): (key, .created)
            case (_, nil): (key, .deleted)
            case (let a, let b) where a == b: (key, .unchanged)
            default: (key, .configured)
            }
        }
    }

    /// The set without `keys`, unless something left would then name a service that no longer exists.
    public func deleting(_ keys: [PolicyKey]) -> Result<PolicySet, PolicyErrors> {
        var next = self
        var issues: [PolicyIssue] = []
        for key in keys where next.documents.removeValue(forKey: key) == nil {
            issues.append(PolicyIssue(file: "", line: 0, column: 0, keyPath: "", message: "\(key) does not exist"))
        }
        issues += next.problems(locatedBy: [])
        return issues.isEmpty ? .success(next) : .failure(PolicyErrors(issues: issues))
    }

    /// Dangling references and conflicts in this set. Those of documents in `loaded` are reported where they
    /// were written; those of documents already stored, at the document of this apply that broke them.
    func problems(locatedBy loaded: [LoadedDocument]) -> [PolicyIssue] {
        var issues: [PolicyIssue] = []
        let fresh = Dictionary(loaded.map { ($0.document.key, $0) }, uniquingKeysWith: { a, _ in a })
        func check(_ ref: PolicyReference) -> String? {
            guard case .service(let service)? = documents[PolicyKey(kind: .service, name: ref.service.value)] else {
                return
                    "service \"\(ref.service)\" is not defined (apply a Service named \(ref.service) first or with it)"
            }
            if let subset = ref.subset, !service.spec.subsets.contains(where: { $0.name == subset }) {
                let known = service.spec.subsets.map(\.name)
                return "Service \(ref.service) has no subset \"\(subset)\""
                    + (known.isEmpty ? " (it defines none)" : " (it defines: \(known.joined(separator: ", ")))")
            }
            return nil
        }
        for key in documents.keys.sorted() {
            let document = documents[key]!
            if let item = fresh[key] {
                for ref in item.references {
                    if let message = check(ref) {
                        issues.append(
                            PolicyIssue(
                                file: ref.file, line: ref.line, column: ref.column, keyPath: ref.keyPath,
                                message: message))
                    }
                }
            } else {
                for ref in document.references {
                    guard let message = check(ref) else { continue }
                    // A stored document broke: blame the Service of this apply that changed under it.
                    let culprit = fresh[PolicyKey(kind: .service, name: ref.service.value)]
                    issues.append(
                        PolicyIssue(
                            file: culprit?.file ?? "", line: culprit?.line ?? 0, column: 1, keyPath: "",
                            message: "\(key) (already applied) would break: \(message)"))
                }
            }
        }
        issues += tcpProblems(fresh)
        // One TrafficPolicy and one AuthorizationPolicy per service.
        for kind in [PolicyKind.trafficPolicy, .authorizationPolicy] {
            let byService = Dictionary(grouping: documents.values.filter { $0.key.kind == kind }, by: \.service)
            for (service, group) in byService where group.count > 1 {
                let names = group.map(\.key).sorted()
                let item = names.lazy.compactMap { fresh[$0] }.first
                issues.append(
                    PolicyIssue(
                        file: item?.file ?? "", line: item?.line ?? 0, column: 1, keyPath: "spec.service",
                        message:
                            "\(names.map(\.description).joined(separator: " and ")) both apply to service \(service); use one \(kind.rawValue) per service"
                    ))
            }
        }
        return issues
    }

    /// What a TCP service's sidecars cannot apply, since they relay bytes and see no requests: authorization rules
    /// naming routes, and a TrafficPolicy's split, routes or rate limit (a sidecar would refuse the version and keep
    /// its last one, so a restriction would never take effect). Reported at the document of this apply, or at the
    /// Service of this apply that made the service TCP.
    private func tcpProblems(_ fresh: [PolicyKey: LoadedDocument]) -> [PolicyIssue] {
        var issues: [PolicyIssue] = []
        for key in documents.keys.sorted() {
            let document = documents[key]!
            guard case .service(let declared)? = documents[PolicyKey(kind: .service, name: document.service)],
                declared.spec.protocol == .tcp
            else { continue }
            var problem: (String, String, String)?
            switch document {
            case .authorization(let a):
                let namesRoutes: (AuthorizationPolicy.Rule) -> Bool = { rule in
                    rule.to.contains { $0.methods?.isEmpty == false || $0.paths?.isEmpty == false || $0.headers != nil }
                }
                if let i = a.spec.rules.firstIndex(where: namesRoutes) {
                    problem = ("spec.rules[\(i)].to", "names routes", "authorize TCP callers with rules without `to`")
                }
            case .traffic(let t):
                if t.spec.split?.isEmpty == false {
                    problem = ("spec.split", "splits requests", "remove it")
                } else if t.spec.routes?.isEmpty == false {
                    problem = ("spec.routes", "routes requests", "remove them")
                } else if t.spec.rateLimit != nil {
                    problem = ("spec.rateLimit", "counts requests", "remove it")
                }
            case .service: break
            }
            guard let (keyPath, what, fix) = problem else { continue }
            let item = fresh[key] ?? fresh[PolicyKey(kind: .service, name: document.service)]
            issues.append(
                PolicyIssue(
                    file: item?.file ?? "", line: item?.line ?? 0, column: 1, keyPath: keyPath,
                    message:
                        "\(key) \(what), but service \(document.service) is protocol tcp: its sidecars relay bytes and see no requests (\(fix))"
                ))
        }
        return issues
    }

    /// What one sidecar needs: its own service's Service, AuthorizationPolicy and TrafficPolicy (inbound: its rate
    /// limits), and the Service and TrafficPolicy of each destination it calls (outbound). Sorted by kind and name.
    public func slice(for service: String, destinations: Set<String>) -> [PolicyDocument] {
        sorted.filter { document in
            switch document.key.kind {
            case .service: document.service == service || destinations.contains(document.service)
            case .authorizationPolicy: document.service == service
            case .trafficPolicy: document.service == service || destinations.contains(document.service)
            }
        }
    }

    /// Canonical JSON of the whole set (documents sorted by kind and name): what a version stores.
    public func canonicalJSON() -> Data {
        var out = Data("[".utf8)
        for (index, document) in sorted.enumerated() {
            if index > 0 { out.append(Data(",".utf8)) }
            out.append(document.canonicalJSON())
        }
        out.append(Data("]".utf8))
        return out
    }

    public init(canonicalJSON data: Data) throws {
        self.init(try JSONDecoder().decode([PolicyDocument].self, from: data))
    }
}

extension PolicyDocument {
    /// The names this document uses, without positions (for documents read back from the store).
    var references: [PolicyReference] {
        func ref(_ service: String, _ subset: String? = nil) -> PolicyReference? {
            guard let name = try? ServiceName(service) else { return nil }
            return PolicyReference(service: name, subset: subset, file: "", line: 0, column: 0, keyPath: "")
        }
        switch self {
        case .service: return []
        case .traffic(let p):
            return [ref(p.spec.service)].compactMap { $0 }
                + (p.spec.split ?? []).compactMap { ref(p.spec.service, $0.subset) }
                + (p.spec.routes ?? []).compactMap { $0.subset.flatMap { ref(p.spec.service, $0) } }
                + (p.spec.rateLimit?.overrides ?? []).flatMap(\.from).compactMap { ref($0) }
        case .authorization(let p):
            return [ref(p.spec.service)].compactMap { $0 }
                + p.spec.rules.flatMap(\.from).filter { $0 != "*" }.compactMap { ref($0) }
        }
    }
}
