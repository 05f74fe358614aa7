import MeshCore
import Yams

/// A validated `kind: TrafficPolicy`: how callers reach one service — timeouts, retries with a budget, load
/// balancing and a weighted split between the service's subsets. (Outlier detection, circuit breaking, rate
/// limits and fault injection join this kind when the sidecar enforces them.)
public struct TrafficPolicy: Sendable, Equatable {
    public let name: ServiceName
    public let spec: Spec

    public struct Spec: Sendable, Equatable, Codable {
        public var service: String
        public var timeouts: Timeouts?
        public var retries: Retries?
        public var loadBalancing: LoadBalancing?
        public var split: [Split]?
    }

    /// Durations are kept as normalised text (`1500ms`, `5s`), the way they are written.
    public struct Timeouts: Sendable, Equatable, Codable {
        /// Whole request, all attempts included.
        public var request: String?
        public var connect: String?
    }

    public struct Retries: Sendable, Equatable, Codable {
        public var attempts = 2
        public var perTryTimeout: String?
        public var budget = Budget()

        public init(attempts: Int = 2, perTryTimeout: String? = nil, budget: Budget = Budget()) {
            self.attempts = attempts
            self.perTryTimeout = perTryTimeout
            self.budget = budget
        }
    }

    /// Extra load retries may add, as a percentage of requests, with a floor in retries per second.
    public struct Budget: Sendable, Equatable, Codable {
        public var percent = 20
        public var minPerSecond = 10

        public init(percent: Int = 20, minPerSecond: Int = 10) {
            self.percent = percent
            self.minPerSecond = minPerSecond
        }
    }

    public enum LoadBalancing: String, Sendable, Equatable, Codable, CaseIterable {
        case roundRobin = "round_robin"
        case leastRequest = "least_request"
        case random
    }

    public struct Split: Sendable, Equatable, Codable {
        public let subset: String
        public let weight: Int
    }

    static let fields = ["service", "timeouts", "retries", "loadBalancing", "split"]

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
        if let node = fields["timeouts"], let t = r.mapping(node, "spec.timeouts", allowed: ["request", "connect"]) {
            requestTimeout = t["request"].flatMap {
                r.duration($0, "spec.timeouts.request", in: .milliseconds(1) ... .seconds(3600))
            }
            let connect = t["connect"].flatMap {
                r.duration($0, "spec.timeouts.connect", in: .milliseconds(1) ... .seconds(60))
            }
            result.timeouts = Timeouts(
                request: requestTimeout.map(DurationText.format), connect: connect.map(DurationText.format))
        }
        if let node = fields["retries"],
            let t = r.mapping(node, "spec.retries", allowed: ["attempts", "perTryTimeout", "budget"])
        {
            var retries = Retries()
            if let a = t["attempts"].flatMap({ r.int($0, "spec.retries.attempts", in: 0...10) }) {
                retries.attempts = a
            }
            if let node = t["perTryTimeout"],
                let perTry = r.duration(node, "spec.retries.perTryTimeout", in: .milliseconds(1) ... .seconds(3600))
            {
                retries.perTryTimeout = DurationText.format(perTry)
                if let requestTimeout, perTry > requestTimeout {
                    r.issue(node, "spec.retries.perTryTimeout", "must not exceed spec.timeouts.request")
                }
            }
            if let b = t["budget"],
                let budget = r.mapping(b, "spec.retries.budget", allowed: ["percent", "minPerSecond"])
            {
                if let p = budget["percent"].flatMap({ r.int($0, "spec.retries.budget.percent", in: 0...100) }) {
                    retries.budget.percent = p
                }
                if let m = budget["minPerSecond"].flatMap({
                    r.int($0, "spec.retries.budget.minPerSecond", in: 0...10000)
                }) {
                    retries.budget.minPerSecond = m
                }
            }
            result.retries = retries
        }
        if let node = fields["loadBalancing"] {
            result.loadBalancing = r.choice(node, "spec.loadBalancing", as: LoadBalancing.self)
        }
        if let node = fields["split"], let items = r.list(node, "spec.split") {
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
            result.split = split
        }
        guard r.issues.count == before else { return nil }
        return (TrafficPolicy(name: name, spec: result), references)
    }
}
