import MeshPolicy
import Prometheus

/// The counters of who may call and how much, every label set made up front: authorization decisions by
/// decision and mode (an audit-mode `deny` is a would-be denial that was let through), rate-limited requests by
/// which limit, injected faults by kind, and whether inbound traffic is refused for want of a policy.
struct AccessMetrics: Sendable {
    enum Decision: String, CaseIterable, Sendable { case allow, deny }
    enum FaultKind: String, CaseIterable, Sendable { case delay, abort }
    static let limits = ["total", "identity"]

    let decisions: [AuthorizationPolicy.Mode: [Decision: Counter]]
    let rateLimited: [String: Counter]
    let faults: [FaultKind: Counter]
    let policyUnavailable: Gauge

    init(_ registry: PrometheusCollectorRegistry) {
        decisions = Dictionary(
            uniqueKeysWithValues: AuthorizationPolicy.Mode.allCases.map { mode in
                (
                    mode,
                    Dictionary(
                        uniqueKeysWithValues: Decision.allCases.map { decision in
                            (
                                decision,
                                registry.makeCounter(
                                    name: "mesh_authz_decisions_total",
                                    labels: [("decision", decision.rawValue), ("mode", mode.rawValue)],
                                    help:
                                        "Inbound requests and TCP connections judged by an AuthorizationPolicy (mode=audit, decision=deny: would have been refused)"
                                )
                            )
                        })
                )
            })
        rateLimited = Dictionary(
            uniqueKeysWithValues: Self.limits.map { limit in
                (
                    limit,
                    registry.makeCounter(
                        name: "mesh_rate_limited_total", labels: [("limit", limit)],
                        help:
                            "Inbound requests answered 429 by the service's rate limit, by which limit (total, identity)"
                    )
                )
            })
        faults = Dictionary(
            uniqueKeysWithValues: FaultKind.allCases.map { kind in
                (
                    kind,
                    registry.makeCounter(
                        name: "mesh_faults_injected_total", labels: [("fault", kind.rawValue)],
                        help: "Faults a TrafficPolicy route injected into outbound requests (delay, abort)")
                )
            })
        policyUnavailable = registry.makeGauge(
            name: "mesh_policy_unavailable",
            help:
                "1 while inbound requests are refused because this sidecar ran an AuthorizationPolicy and cannot load one"
        )
    }
}
