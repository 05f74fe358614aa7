import MeshCore
import MeshPolicy
import NIOCore

/// How this sidecar calls one destination, compiled once per policy version from the destination's Service and
/// TrafficPolicy: durations as `TimeAmount`, every default filled in. Shared by every request of the version
/// (a class, so a request takes one reference, not a copy). Only `PolicySnapshot.compile` makes one.
final class DestinationPolicy: Sendable {
    struct SplitEntry: Sendable, Equatable {
        let subset: String
        let weight: Int
        /// The subset's instance labels, from the destination's Service.
        let labels: [String: String]
    }

    struct CircuitLimits: Sendable, Equatable {
        let maxRequests: Int
        let maxPendingRequests: Int
        let maxConnectionsPerEndpoint: Int
    }

    /// What the destination's Service declares, if the sidecar has it.
    let declaredProtocol: ServiceProtocol?
    let requestTimeout: TimeAmount?
    let connectTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let retries: RetryRules
    let loadBalancing: TrafficPolicy.LoadBalancing
    let outlier: EndpointHealth.Rules
    let circuit: CircuitLimits
    let split: [SplitEntry]

    fileprivate init(declared: ServicePolicy?, traffic: TrafficPolicy.Spec?) throws {
        typealias D = TrafficPolicy.Defaults
        declaredProtocol = declared?.spec.protocol
        requestTimeout = try (traffic?.timeouts?.request ?? D.requestTimeout).map { try TimeAmount(parsing: $0) }
        connectTimeout = try TimeAmount(parsing: traffic?.timeouts?.connect ?? D.connectTimeout)
        idleTimeout = try TimeAmount(parsing: traffic?.timeouts?.idle ?? D.idleTimeout)
        retries = try RetryRules(traffic?.retries ?? TrafficPolicy.Retries())
        loadBalancing = traffic?.loadBalancing ?? D.loadBalancing
        let o = traffic?.outlierDetection ?? TrafficPolicy.OutlierDetection()
        outlier = EndpointHealth.Rules(
            consecutiveFailures: o.consecutiveFailures, baseEjection: try TimeAmount(parsing: o.baseEjectionTime),
            maxEjection: try TimeAmount(parsing: o.maxEjectionTime), maxEjectedPercent: o.maxEjectedPercent)
        let c = traffic?.circuitBreaking ?? TrafficPolicy.CircuitBreaking()
        circuit = CircuitLimits(
            maxRequests: c.maxRequests, maxPendingRequests: c.maxPendingRequests,
            maxConnectionsPerEndpoint: c.maxConnectionsPerEndpoint)
        let subsets = declared?.spec.subsets ?? []
        split = (traffic?.split ?? []).map { entry in
            SplitEntry(
                subset: entry.subset, weight: entry.weight,
                labels: subsets.first { $0.name == entry.subset }?.labels ?? [:])
        }
    }

    /// The defaults, for every destination no policy names (constants that parse).
    static let defaults = try! DestinationPolicy(declared: nil, traffic: nil)
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
        destinations[service] ?? .defaults
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
                destinations[name] = try DestinationPolicy(declared: services[name], traffic: traffic[name])
            } catch {
                throw MeshError(
                    .invalidPolicy, "TrafficPolicy for \(name): \((error as? MeshError)?.message ?? "\(error)")")
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
