import MeshCore
import Yams

/// A validated `kind: TrafficPolicy`: how callers reach one service — timeouts, retries within a budget, load
/// balancing, outlier detection, circuit breaking, a weighted split between the service's subsets, routes (by
/// method, path or header, to a subset, with injected faults), all applied by the callers' sidecars; and the
/// local rate limits the service's own sidecars apply to what they receive. Every field is optional;
/// `TrafficPolicy.Defaults` holds what applies when one is absent (also with no policy at all).
public struct TrafficPolicy: Sendable, Equatable {
    public let name: ServiceName
    public let spec: Spec

    public struct Spec: Sendable, Equatable, Codable {
        public var service: String
        public var timeouts: Timeouts?
        public var retries: Retries?
        public var loadBalancing: LoadBalancing?
        public var outlierDetection: OutlierDetection?
        public var circuitBreaking: CircuitBreaking?
        public var split: [Split]?
        public var routes: [Route]?
        public var rateLimit: RateLimit?
    }

    /// Durations are kept as normalised text (`1500ms`, `5s`), the way they are written.
    public struct Timeouts: Sendable, Equatable, Codable {
        /// Whole request, all attempts and backoffs included.
        public var request: String?
        /// TCP connect and TLS handshake to one endpoint.
        public var connect: String?
        /// No byte either way on one request for this long ends it.
        public var idle: String?

        public init(request: String? = nil, connect: String? = nil, idle: String? = nil) {
            self.request = request
            self.connect = connect
            self.idle = idle
        }
    }

    public enum LoadBalancing: String, Sendable, Equatable, Codable, CaseIterable {
        /// Power of two choices over peak-EWMA latency times outstanding requests (Linkerd's).
        case peakEWMA = "peak_ewma"
        /// Power of two choices over outstanding requests.
        case leastRequest = "least_request"
        case roundRobin = "round_robin"
        case random
    }

    public struct Split: Sendable, Equatable, Codable {
        public let subset: String
        public let weight: Int
    }

    static let fields = [
        "service", "timeouts", "retries", "loadBalancing", "outlierDetection", "circuitBreaking", "split", "routes",
        "rateLimit",
    ]

    static func read(_ spec: Node?, name: ServiceName, in document: Node, _ r: inout NodeReader) -> (
        TrafficPolicy, [PolicyReference]
    )? {
        guard let spec else {
            r.issue(document, "spec", "is required (at least spec.service)")
            return nil
        }
        let before = r.issues.count
        guard let fields = r.mapping(spec, "spec", allowed: Self.fields),
            let serviceNode = r.required(fields, "service", in: spec, "spec"),
            let service = r.serviceName(serviceNode, "spec.service")
        else { return nil }
        var references = [PolicyReference(service: service, subset: nil, at: serviceNode, "spec.service", r.file)]
        var result = Spec(service: service.value)
        var requestTimeout: Duration?
        if let node = fields["timeouts"] {
            (result.timeouts, requestTimeout) = readTimeouts(node, &r)
        }
        if let node = fields["retries"] { result.retries = Retries.read(node, requestTimeout: requestTimeout, &r) }
        if let node = fields["loadBalancing"] {
            result.loadBalancing = r.choice(node, "spec.loadBalancing", as: LoadBalancing.self)
        }
        if let node = fields["outlierDetection"] { result.outlierDetection = OutlierDetection.read(node, &r) }
        if let node = fields["circuitBreaking"] { result.circuitBreaking = CircuitBreaking.read(node, &r) }
        if let node = fields["split"] {
            result.split = readSplit(node, service: service, references: &references, &r)
        }
        if let node = fields["routes"] {
            result.routes = readRoutes(node, service: service, references: &references, &r)
        }
        if let node = fields["rateLimit"] { result.rateLimit = RateLimit.read(node, references: &references, &r) }
        guard r.issues.count == before else { return nil }
        return (TrafficPolicy(name: name, spec: result), references)
    }

    private static func readTimeouts(_ node: Node, _ r: inout NodeReader) -> (Timeouts?, Duration?) {
        guard let t = r.mapping(node, "spec.timeouts", allowed: ["request", "connect", "idle"]) else {
            return (nil, nil)
        }
        let request = t["request"].flatMap {
            r.duration($0, "spec.timeouts.request", in: .milliseconds(1) ... .seconds(3600))
        }
        let connect = t["connect"].flatMap {
            r.duration($0, "spec.timeouts.connect", in: .milliseconds(1) ... .seconds(60))
        }
        let idle = t["idle"].flatMap {
            r.duration($0, "spec.timeouts.idle", in: .seconds(1) ... .seconds(86400))
        }
        let timeouts = Timeouts(
            request: request.map(DurationText.format), connect: connect.map(DurationText.format),
            idle: idle.map(DurationText.format))
        return (timeouts, request)
    }

    private static func readSplit(
        _ node: Node, service: ServiceName, references: inout [PolicyReference], _ r: inout NodeReader
    ) -> [Split]? {
        guard let items = r.list(node, "spec.split") else { return nil }
        let before = r.issues.count
        var split: [Split] = []
        for (index, item) in items.enumerated() {
            let path = "spec.split[\(index)]"
            guard let entry = r.mapping(item, path, allowed: ["subset", "weight"]),
                let subsetNode = r.required(entry, "subset", in: item, path),
                let subset = r.string(subsetNode, "\(path).subset"),
                let weight = r.required(entry, "weight", in: item, path).flatMap({
                    r.int($0, "\(path).weight", in: 0...100)
                })
            else { continue }
            if split.contains(where: { $0.subset == subset }) {
                r.issue(subsetNode, "\(path).subset", "subset \"\(subset)\" appears twice")
            }
            split.append(Split(subset: subset, weight: weight))
            references.append(
                PolicyReference(service: service, subset: subset, at: subsetNode, "\(path).subset", r.file))
        }
        let total = split.reduce(0) { $0 + $1.weight }
        if r.issues.count == before, total != 100 {
            r.issue(node, "spec.split", "weights must add up to 100 (got \(total))")
        }
        return split
    }
}
