import Yams

extension TrafficPolicy {
    /// Endpoints that keep failing are taken out of rotation for a while: after `consecutiveFailures` failures
    /// in a row (5xx, connect errors, resets, per-try timeouts) for `baseEjectionTime`, doubling on each repeated
    /// ejection up to `maxEjectionTime`; never more than `maxEjectedPercent` of the endpoints (and never all).
    public struct OutlierDetection: Sendable, Equatable, Codable {
        /// 0 turns ejection off.
        public var consecutiveFailures = Defaults.consecutiveFailures
        public var baseEjectionTime = Defaults.baseEjectionTime
        public var maxEjectionTime = Defaults.maxEjectionTime
        public var maxEjectedPercent = Defaults.maxEjectedPercent

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            consecutiveFailures = try c.decodeIfPresent(Int.self, forKey: .consecutiveFailures) ?? consecutiveFailures
            baseEjectionTime = try c.decodeIfPresent(String.self, forKey: .baseEjectionTime) ?? baseEjectionTime
            maxEjectionTime = try c.decodeIfPresent(String.self, forKey: .maxEjectionTime) ?? maxEjectionTime
            maxEjectedPercent = try c.decodeIfPresent(Int.self, forKey: .maxEjectedPercent) ?? maxEjectedPercent
        }

        static let fields = ["consecutiveFailures", "baseEjectionTime", "maxEjectionTime", "maxEjectedPercent"]

        static func read(_ node: Node, _ r: inout NodeReader) -> Self? {
            guard let o = r.mapping(node, "spec.outlierDetection", allowed: fields) else { return nil }
            var value = Self()
            if let n = o["consecutiveFailures"].flatMap({
                r.int($0, "spec.outlierDetection.consecutiveFailures", in: 0...1000)
            }) {
                value.consecutiveFailures = n
            }
            let base = o["baseEjectionTime"].flatMap {
                r.duration($0, "spec.outlierDetection.baseEjectionTime", in: .milliseconds(100) ... .seconds(3600))
            }
            let max = o["maxEjectionTime"].flatMap {
                r.duration($0, "spec.outlierDetection.maxEjectionTime", in: .milliseconds(100) ... .seconds(86400))
            }
            if let base { value.baseEjectionTime = DurationText.format(base) }
            if let max { value.maxEjectionTime = DurationText.format(max) }
            if let b = try? Duration(parsing: value.baseEjectionTime),
                let m = try? Duration(parsing: value.maxEjectionTime),
                b > m
            {
                r.issue(
                    node, "spec.outlierDetection",
                    "baseEjectionTime (\(value.baseEjectionTime)) must not exceed maxEjectionTime (\(value.maxEjectionTime))"
                )
            }
            if let p = o["maxEjectedPercent"].flatMap({
                r.int($0, "spec.outlierDetection.maxEjectedPercent", in: 0...100)
            }) {
                value.maxEjectedPercent = p
            }
            return value
        }
    }

    /// Limits past which a caller gets 503 `circuit_open` at once instead of adding to a queue: requests in
    /// flight to the service, requests waiting for a connection, and connections to one endpoint.
    public struct CircuitBreaking: Sendable, Equatable, Codable {
        public var maxRequests = Defaults.maxRequests
        public var maxPendingRequests = Defaults.maxPendingRequests
        public var maxConnectionsPerEndpoint = Defaults.maxConnectionsPerEndpoint

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxRequests = try c.decodeIfPresent(Int.self, forKey: .maxRequests) ?? maxRequests
            maxPendingRequests = try c.decodeIfPresent(Int.self, forKey: .maxPendingRequests) ?? maxPendingRequests
            maxConnectionsPerEndpoint =
                try c.decodeIfPresent(Int.self, forKey: .maxConnectionsPerEndpoint) ?? maxConnectionsPerEndpoint
        }

        static let fields = ["maxRequests", "maxPendingRequests", "maxConnectionsPerEndpoint"]

        static func read(_ node: Node, _ r: inout NodeReader) -> Self? {
            guard let c = r.mapping(node, "spec.circuitBreaking", allowed: fields) else { return nil }
            var value = Self()
            if let n = c["maxRequests"].flatMap({ r.int($0, "spec.circuitBreaking.maxRequests", in: 1...1_000_000) }) {
                value.maxRequests = n
            }
            if let n = c["maxPendingRequests"].flatMap({
                r.int($0, "spec.circuitBreaking.maxPendingRequests", in: 0...1_000_000)
            }) {
                value.maxPendingRequests = n
            }
            if let n = c["maxConnectionsPerEndpoint"].flatMap({
                r.int($0, "spec.circuitBreaking.maxConnectionsPerEndpoint", in: 1...100_000)
            }) {
                value.maxConnectionsPerEndpoint = n
            }
            return value
        }
    }
}
