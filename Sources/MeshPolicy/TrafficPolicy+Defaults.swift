extension TrafficPolicy {
    /// What applies when a TrafficPolicy leaves a field out, or a destination has none: the README's policy
    /// reference lists the same values. Chosen to be safer than the other meshes' (see the README for why).
    public enum Defaults {
        /// No limit on a whole request: streams and long polls are common; `idle` catches the hung ones.
        public static let requestTimeout: String? = nil
        public static let connectTimeout = "1s"
        /// Envoy's stream idle timeout.
        public static let idleTimeout = "5m"
        public static let retryAttempts = 2
        public static let retryBufferBytes = 64 * 1024
        public static let backoffBase = "25ms"
        public static let backoffMax = "250ms"
        public static let budgetPercent = 20
        public static let budgetMinPerSecond = 10
        public static let loadBalancing = LoadBalancing.peakEWMA
        /// Linkerd's failure accrual uses 7; Envoy's consecutive_5xx, 5.
        public static let consecutiveFailures = 5
        public static let baseEjectionTime = "30s"
        public static let maxEjectionTime = "5m"
        public static let maxEjectedPercent = 50
        /// Envoy's circuit breakers default to 1024 each, which busy services trip by surprise; these match the
        /// sidecar's per-listener connection cap instead.
        public static let maxRequests = 4096
        public static let maxPendingRequests = 1024
        public static let maxConnectionsPerEndpoint = 1024
    }
}
