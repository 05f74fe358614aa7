import Prometheus

/// The counters of the resilience layers, every label set made up front: timeouts by direction and which limit
/// ran out. (Retries, retry-budget refusals and ejections are per peer: `PeerMetrics`.)
struct ResilienceMetrics: Sendable {
    let timeouts: [Direction: [ProxyError.Timeout: Counter]]

    init(_ registry: PrometheusCollectorRegistry) {
        var timeouts: [Direction: [ProxyError.Timeout: Counter]] = [:]
        for direction in Direction.allCases {
            let d = ("direction", direction.rawValue)
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
        self.timeouts = timeouts
    }
}
