import MeshCore
import MeshPolicy

/// How this sidecar calls one destination, compiled once per policy version from the destination's Service and
/// TrafficPolicy: durations as `Duration`, defaults filled in. Only `PolicySnapshot.compile` makes one.
struct DestinationPolicy: Sendable, Equatable {
    struct Retries: Sendable, Equatable {
        let attempts: Int
        let perTryTimeout: Duration?
        let budgetPercent: Int
        let budgetMinPerSecond: Int
    }

    struct SplitEntry: Sendable, Equatable {
        let subset: String
        let weight: Int
        /// The subset's instance labels, from the destination's Service.
        let labels: [String: String]
    }

    let service: ServiceName
    /// What the destination's Service declares, if the sidecar has it.
    let declaredProtocol: ServiceProtocol?
    let requestTimeout: Duration?
    let connectTimeout: Duration?
    let retries: Retries?
    let loadBalancing: TrafficPolicy.LoadBalancing
    let split: [SplitEntry]

    fileprivate init(service: ServiceName, declared: ServicePolicy?, traffic: TrafficPolicy.Spec?) throws(MeshError) {
        self.service = service
        declaredProtocol = declared?.spec.protocol
        requestTimeout = try traffic?.timeouts?.request.map { text throws(MeshError) in try Duration(parsing: text) }
        connectTimeout = try traffic?.timeouts?.connect.map { text throws(MeshError) in try Duration(parsing: text) }
        retries = try traffic?.retries.map { r throws(MeshError) in
            Retries(
                attempts: r.attempts,
                perTryTimeout: try r.perTryTimeout.map { text throws(MeshError) in try Duration(parsing: text) },
                budgetPercent: r.budget.percent, budgetMinPerSecond: r.budget.minPerSecond)
        }
        loadBalancing = traffic?.loadBalancing ?? .roundRobin
        let subsets = declared?.spec.subsets ?? []
        split = (traffic?.split ?? []).map { entry in
            SplitEntry(
                subset: entry.subset, weight: entry.weight,
                labels: subsets.first { $0.name == entry.subset }?.labels ?? [:])
        }
    }
}

/// How this sidecar's own service is called: its Service and AuthorizationPolicy, compiled once per version.
struct InboundPolicy: Sendable, Equatable {
    let service: ServiceName
    let declaredProtocol: ServiceProtocol?
    /// nil: no AuthorizationPolicy (every workload of the trust domain may call; enforcement is the next issue's).
    let authorization: AuthorizationPolicy.Spec?

    fileprivate init(service: ServiceName, declared: ServicePolicy?, authorization: AuthorizationPolicy.Spec?) {
        self.service = service
        declaredProtocol = declared?.spec.protocol
        self.authorization = authorization
    }
}

/// One policy version as the data path reads it: immutable, shared, read once per request.
final class PolicySnapshot: Sendable {
    let version: UInt64
    let inbound: InboundPolicy
    private let destinations: [ServiceName: DestinationPolicy]

    private init(version: UInt64, inbound: InboundPolicy, destinations: [ServiceName: DestinationPolicy]) {
        self.version = version
        self.inbound = inbound
        self.destinations = destinations
    }

    /// The policy for calling `service`: its compiled one, or the defaults when the version names none.
    func destination(_ service: ServiceName) -> DestinationPolicy {
        if let compiled = destinations[service] { return compiled }
        // No lookup failure path: the defaults cannot fail to compile.
        return try! DestinationPolicy(service: service, declared: nil, traffic: nil)
    }

    /// Compiles the documents of one version for the sidecar of `service`; throws naming the document that
    /// cannot be compiled.
    static func compile(version: UInt64, documents: [PolicyDocument], for service: ServiceName) throws(MeshError)
        -> PolicySnapshot
    {
        var services: [ServiceName: ServicePolicy] = [:]
        var traffic: [ServiceName: TrafficPolicy.Spec] = [:]
        var authorization: AuthorizationPolicy.Spec?
        for document in documents {
            switch document {
            case .service(let s): services[s.name] = s
            case .traffic(let t):
                guard let target = try? ServiceName(t.spec.service) else {
                    throw MeshError(.invalidPolicy, "TrafficPolicy/\(t.name): spec.service is not a service name")
                }
                traffic[target] = t.spec
            case .authorization(let a) where a.spec.service == service.value: authorization = a.spec
            case .authorization: break
            }
        }
        var destinations: [ServiceName: DestinationPolicy] = [:]
        for name in Set(services.keys).union(traffic.keys) where name != service || traffic[name] != nil {
            do {
                destinations[name] = try DestinationPolicy(
                    service: name, declared: services[name], traffic: traffic[name])
            } catch {
                throw MeshError(.invalidPolicy, "TrafficPolicy for \(name): \(error.message)")
            }
        }
        return PolicySnapshot(
            version: version,
            inbound: InboundPolicy(service: service, declared: services[service], authorization: authorization),
            destinations: destinations)
    }

    static func empty(for service: ServiceName) -> PolicySnapshot {
        PolicySnapshot(
            version: 0, inbound: InboundPolicy(service: service, declared: nil, authorization: nil), destinations: [:])
    }
}
