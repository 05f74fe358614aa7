import MeshCore
import Yams

extension TrafficPolicy {
    /// Local rate limits, enforced by the service's own sidecars on the requests they receive (Linkerd's
    /// `HTTPLocalRateLimitPolicy`): `total` for all callers together, `perIdentity` for each calling service,
    /// `overrides` giving named callers their own limit instead. A request must fit both its identity's limit
    /// and the total; over either it is answered 429 `rate_limited` with `retry-after`. Each limit lets
    /// `requestsPerSecond` through on average, and up to `burst` at once (default: one second's worth). Limits
    /// are per sidecar instance (local), not across the service's instances.
    public struct RateLimit: Sendable, Equatable, Codable {
        public var total: Limit?
        public var perIdentity: Limit?
        public var overrides: [Override]?

        public init(total: Limit? = nil, perIdentity: Limit? = nil, overrides: [Override]? = nil) {
            self.total = total
            self.perIdentity = perIdentity
            self.overrides = overrides
        }

        public struct Limit: Sendable, Equatable, Codable {
            public var requestsPerSecond: Int
            public var burst: Int?

            public init(requestsPerSecond: Int, burst: Int? = nil) {
                self.requestsPerSecond = requestsPerSecond
                self.burst = burst
            }
        }

        public struct Override: Sendable, Equatable, Codable {
            /// Calling services this limit applies to (each on its own), instead of `perIdentity`.
            public var from: [String]
            public var requestsPerSecond: Int
            public var burst: Int?
        }

        static func read(
            _ node: Node, references: inout [PolicyReference], _ r: inout NodeReader
        ) -> RateLimit? {
            let path = "spec.rateLimit"
            guard let fields = r.mapping(node, path, allowed: ["total", "perIdentity", "overrides"]) else {
                return nil
            }
            var value = RateLimit()
            value.total = fields["total"].flatMap { readLimit($0, "\(path).total", &r) }
            value.perIdentity = fields["perIdentity"].flatMap { readLimit($0, "\(path).perIdentity", &r) }
            if let o = fields["overrides"], let items = r.list(o, "\(path).overrides") {
                var seen: Set<String> = []
                value.overrides = []
                for (index, item) in items.enumerated() {
                    let itemPath = "\(path).overrides[\(index)]"
                    guard
                        let fields = r.mapping(item, itemPath, allowed: ["from", "requestsPerSecond", "burst"]),
                        let limit = limit(fields, item, itemPath, &r),
                        let fromNode = r.required(fields, "from", in: item, itemPath),
                        let from = r.list(fromNode, "\(itemPath).from")
                    else { continue }
                    var callers: [String] = []
                    for (i, caller) in from.enumerated() {
                        guard let name = r.serviceName(caller, "\(itemPath).from[\(i)]") else { continue }
                        if !seen.insert(name.value).inserted {
                            r.issue(caller, "\(itemPath).from[\(i)]", "\(name) has more than one override")
                        }
                        callers.append(name.value)
                        references.append(
                            PolicyReference(service: name, subset: nil, at: caller, "\(itemPath).from[\(i)]", r.file))
                    }
                    if callers.isEmpty { r.issue(fromNode, "\(itemPath).from", "must name at least one service") }
                    value.overrides?.append(
                        Override(from: callers, requestsPerSecond: limit.requestsPerSecond, burst: limit.burst))
                }
            }
            if fields["total"] == nil, fields["perIdentity"] == nil, fields["overrides"] == nil {
                r.issue(node, path, "needs total, perIdentity or overrides")
            }
            return value
        }

        private static func readLimit(_ node: Node, _ path: String, _ r: inout NodeReader) -> Limit? {
            guard let fields = r.mapping(node, path, allowed: ["requestsPerSecond", "burst"]) else { return nil }
            return limit(fields, node, path, &r)
        }

        private static func limit(_ fields: [String: Node], _ node: Node, _ path: String, _ r: inout NodeReader)
            -> Limit?
        {
            guard
                let rate = r.required(fields, "requestsPerSecond", in: node, path).flatMap({
                    r.int($0, "\(path).requestsPerSecond", in: 1...10_000_000)
                })
            else { return nil }
            let burst = fields["burst"].flatMap { r.int($0, "\(path).burst", in: 1...10_000_000) }
            return Limit(requestsPerSecond: rate, burst: burst)
        }
    }
}
