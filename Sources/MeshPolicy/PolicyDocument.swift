import Foundation
import MeshCore

/// The kinds of policy document, as written in `kind:`.
public enum PolicyKind: String, Sendable, CaseIterable, Codable, Comparable {
    case service = "Service"
    case trafficPolicy = "TrafficPolicy"
    case authorizationPolicy = "AuthorizationPolicy"

    public static func < (a: Self, b: Self) -> Bool { a.order < b.order }
    private var order: Int { Self.allCases.firstIndex(of: self)! }

    /// Accepts `Service`, `service`, `services`, `TrafficPolicy`, `trafficpolicies`, … as `meshctl get` does.
    public init?(loosely text: String) {
        let t = text.lowercased()
        guard
            let kind = Self.allCases.first(where: { k in
                let n = k.rawValue.lowercased()
                return t == n || t == n + "s" || (n.hasSuffix("y") && t == n.dropLast() + "ies")
            })
        else { return nil }
        self = kind
    }
}

/// Identifies a document in the policy set: its kind and `metadata.name`.
public struct PolicyKey: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let kind: PolicyKind
    public let name: String

    public init(kind: PolicyKind, name: String) {
        self.kind = kind
        self.name = name
    }

    public static func < (a: Self, b: Self) -> Bool { (a.kind, a.name) < (b.kind, b.name) }
    public var description: String { "\(kind.rawValue)/\(name)" }
}

/// One validated document of any kind. Encodes to the shape it was written in (`apiVersion`, `kind`,
/// `metadata.name`, `spec`), with defaults filled in, so what `meshctl get` prints can be applied again.
public enum PolicyDocument: Sendable, Equatable, Codable {
    case service(ServicePolicy)
    case traffic(TrafficPolicy)
    case authorization(AuthorizationPolicy)

    public var key: PolicyKey {
        switch self {
        case .service(let p): PolicyKey(kind: .service, name: p.name.value)
        case .traffic(let p): PolicyKey(kind: .trafficPolicy, name: p.name.value)
        case .authorization(let p): PolicyKey(kind: .authorizationPolicy, name: p.name.value)
        }
    }

    /// The service a TrafficPolicy or AuthorizationPolicy is about (a Service is about itself).
    public var service: String {
        switch self {
        case .service(let p): p.name.value
        case .traffic(let p): p.spec.service
        case .authorization(let p): p.spec.service
        }
    }

    private enum Keys: String, CodingKey { case apiVersion, kind, metadata, spec }
    private struct Metadata: Codable { let name: String }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(PolicyLoader.apiVersion, forKey: .apiVersion)
        try c.encode(key.kind, forKey: .kind)
        try c.encode(Metadata(name: key.name), forKey: .metadata)
        switch self {
        case .service(let p): try c.encode(p.spec, forKey: .spec)
        case .traffic(let p): try c.encode(p.spec, forKey: .spec)
        case .authorization(let p): try c.encode(p.spec, forKey: .spec)
        }
    }

    /// Only for documents this code encoded (the store's own records); user input goes through `PolicyLoader`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let kind = try c.decode(PolicyKind.self, forKey: .kind)
        let rawName = try c.decode(Metadata.self, forKey: .metadata).name
        let name: ServiceName
        do { name = try ServiceName(rawName) } catch {
            throw DecodingError.dataCorruptedError(forKey: .metadata, in: c, debugDescription: error.message)
        }
        switch kind {
        case .service:
            self = .service(ServicePolicy(name: name, spec: try c.decode(ServicePolicy.Spec.self, forKey: .spec)))
        case .trafficPolicy:
            self = .traffic(TrafficPolicy(name: name, spec: try c.decode(TrafficPolicy.Spec.self, forKey: .spec)))
        case .authorizationPolicy:
            self = .authorization(
                AuthorizationPolicy(name: name, spec: try c.decode(AuthorizationPolicy.Spec.self, forKey: .spec)))
        }
    }

    /// Canonical JSON (sorted keys): what the store keeps and what is pushed to sidecars.
    public func canonicalJSON() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try! encoder.encode(self)  // only strings, numbers and arrays of them: cannot fail
    }
}

/// A name another document must define (a Service, or a subset of one), with where it was written, so a
/// dangling reference is reported at `file:line:column` like any other problem.
public struct PolicyReference: Sendable, Equatable {
    public let service: ServiceName
    public let subset: String?
    public let file: String
    public let line: Int
    public let column: Int
    public let keyPath: String
}
