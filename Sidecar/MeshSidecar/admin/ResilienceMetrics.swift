import Prometheus

/// The counters of the resilience layers, every label set made up front: retries and retry-budget refusals by
/// direction, timeouts by direction and which limit ran out, and outlier ejections.
struct ResilienceMetrics: Sendable {
    let retries: [Direction: Counter]
    let budgetExhausted: [Direction: Counter]
    let timeouts: [Direction: [ProxyError.Timeout: Counter]]
    let ejections: Counter

    init(_ registry: PrometheusCollectorRegistry) {
        var retries: [Direction: Counter] = [:]
        var budgetExhausted: [Direction: Counter] = [:]
        var timeouts: [Direction: [ProxyError.Timeout: Counter]] = [:]
        for direction in Direction.allCases {
            let d = ("direction", direction.rawValue)
            retries[direction] = registry.makeCounter(
                name: "mesh_retries_total", labels: [d], help: "Requests sent again after a failed try")
            budgetExhausted[direction] = registry.makeCounter(
                name: "mesh_retry_budget_exhausted_total", labels: [d],
                help: "Retries the destination's retry budget refused")
            timeouts[direction] = Dictionary(
                uniqueKeysWithValues: ProxyError.Timeout.allCases.map { kind in
                    (
                        kind,
                        registry.makeCounter(
                            name: "mesh_timeouts_total", labels: [d, ("timeout", kind.rawValue)],
                            help:
                                "Exchanges ended by a timeout, by which one: request, deadline, per_try, connect, idle")
                    )
                })
        }
        self.retries = retries
        self.budgetExhausted = budgetExhausted
        self.timeouts = timeouts
        ejections = registry.makeCounter(
            name: "mesh_endpoint_ejections_total",
            help: "Endpoints taken out of rotation by outlier detection (consecutive failures)")
    }
}
