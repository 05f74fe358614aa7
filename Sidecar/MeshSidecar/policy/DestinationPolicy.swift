import MeshCore
import MeshPolicy
import NIOCore

/// How this sidecar calls one destination, compiled once per policy version from the destination's Service and
/// TrafficPolicy: durations as `TimeAmount`, every default filled in. Shared by every request of the version
/// (a class, so a request takes one reference, not a copy). Made by `PolicySnapshot.compile`.
final class DestinationPolicy: Sendable {
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
    /// Routes (by method, path, header: a subset, a fault) and the weighted split between subsets.
    let routes: TrafficRoutes

    init(declared: ServicePolicy?, traffic: TrafficPolicy.Spec?) throws {
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
        routes = try TrafficRoutes(traffic, subsets: declared?.spec.subsets ?? [])
    }

    /// The defaults, for every destination no policy names (constants that parse).
    static let defaults = try! DestinationPolicy(declared: nil, traffic: nil)
}
