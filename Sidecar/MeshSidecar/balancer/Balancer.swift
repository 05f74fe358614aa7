import MeshControlClient
import MeshCore
import MeshPolicy
import NIOCore

/// Everything this sidecar keeps about calling one destination on one event loop (the sidecar runs one): picks
/// the endpoint for each try with the policy's strategy — power of two choices over peak-EWMA cost by default —
/// skipping ejected endpoints; hears how each try ended (`attemptEnded`) to update latency estimates and eject
/// endpoints that keep failing; holds the destination's retry budget and circuit-breaker counts. Used only on
/// its loop: no lock on the request path.
final class Balancer: @unchecked Sendable {
    let service: ServiceName
    /// The identity every endpoint of the destination must prove, and the response header naming it: computed
    /// once per destination, not per request.
    let identity: SPIFFEID
    let identityHeader: (String, String)
    private var endpoints: [HostPort: EndpointState] = [:]
    private var revision: UInt64?
    private var ejectedCount = 0
    private var next = 0
    /// The policy of the latest pick (the one failures are judged by).
    private var policy = DestinationPolicy.defaults
    var budget: RetryBudget
    /// Exchanges admitted and not yet completed, and requests waiting for a connection (circuit breaking).
    private(set) var activeRequests = 0
    var pendingRequests = 0
    let loops: Int
    /// Called with each ejection (endpoint, for how long).
    var onEjection: ((HostPort, TimeAmount) -> Void)?
    /// Each subset's members at the revision they were computed for (see `members(of:in:)`).
    var subsetMembers:
        [String: (
            all: [DiscoveredEndpoint], revision: UInt64, labels: [String: String], endpoints: [DiscoveredEndpoint]
        )] =
            [:]
    /// Uniform numbers for splits and fault chances (and P2C): one generator per destination and loop.
    var random = SystemRandomNumberGenerator()

    struct EndpointState {
        var inFlight = 0
        var latency: PeakEWMA
        var health = EndpointHealth()
    }

    init(service: ServiceName, trustDomain: TrustDomain, loops: Int = 1) {
        self.service = service
        identity = .workload(service, in: trustDomain)
        identityHeader = (OutboundRouter.upstreamIdentityHeader, identity.uri)
        self.loops = max(loops, 1)
        budget = RetryBudget(
            percent: DestinationPolicy.defaults.retries.budgetPercent,
            minPerSecond: Double(DestinationPolicy.defaults.retries.budgetMinPerSecond) / Double(max(loops, 1)))
    }

    /// Admits one more exchange unless the destination is at its `maxRequests`: false means `circuit_open`.
    func admit(_ policy: DestinationPolicy) -> Bool {
        guard activeRequests < policy.circuit.maxRequests / loops + (policy.circuit.maxRequests % loops > 0 ? 1 : 0)
        else { return false }
        activeRequests += 1
        return true
    }

    func exchangeEnded() { activeRequests = max(0, activeRequests - 1) }

    /// The endpoint for one try of a request, from a non-empty list (of `subset`'s members, when given), with
    /// the policy of this request. `excluding`: the endpoints earlier tries failed on, avoided while there is
    /// another. `tracked` picks are counted in flight until their try's report arrives (an opaque TCP relay
    /// reports nothing yet).
    func pick(
        _ snapshot: DiscoveredService, policy: DestinationPolicy, subset: SubsetSelector? = nil,
        excluding: [HostPort] = [], tracked: Bool = true, at now: NIODeadline = .now()
    ) -> DiscoveredEndpoint {
        let all = subset.map { members(of: $0, in: snapshot) } ?? snapshot.endpoints
        precondition(!all.isEmpty, "pick from no endpoints")
        adopt(policy)
        if revision != snapshot.revision { prune(snapshot) }
        var candidates = all
        if ejectedCount > 0 || !excluding.isEmpty {
            // Preferred: in rotation and not yet tried; then in rotation; then anything (never nothing).
            var ejected = 0
            let admitted = all.filter { endpoint in
                guard endpoints[endpoint.address]?.health.isEjected(at: now) == true else { return true }
                ejected += 1
                return false
            }
            // Re-admissions happen by the clock: the count is brought up to date whenever it is looked at.
            ejectedCount = ejected
            let untried = excluding.isEmpty ? admitted : admitted.filter { !excluding.contains($0.address) }
            if !untried.isEmpty {
                candidates = untried
            } else if !admitted.isEmpty {
                candidates = admitted
            }
        }
        let endpoint = choose(candidates, strategy: policy.loadBalancing, at: now)
        if tracked { endpoints[endpoint.address, default: EndpointState(latency: PeakEWMA(at: now))].inFlight += 1 }
        return endpoint
    }

    private func choose(
        _ candidates: [DiscoveredEndpoint], strategy: TrafficPolicyStrategy, at now: NIODeadline
    ) -> DiscoveredEndpoint {
        guard candidates.count > 1 else { return candidates[0] }
        switch strategy {
        case .roundRobin:
            next &+= 1
            return candidates[(next &- 1) % candidates.count]
        case .random:
            return candidates[Int.random(in: 0..<candidates.count, using: &random)]
        case .leastRequest, .peakEWMA:
            // Power of two choices: two distinct endpoints at random, the cheaper one wins.
            let i = Int.random(in: 0..<candidates.count, using: &random)
            var j = Int.random(in: 0..<(candidates.count - 1), using: &random)
            if j >= i { j += 1 }
            let a = candidates[i]
            let b = candidates[j]
            return cost(a.address, strategy, at: now) <= cost(b.address, strategy, at: now) ? a : b
        }
    }

    private func cost(_ address: HostPort, _ strategy: TrafficPolicyStrategy, at now: NIODeadline) -> Double {
        guard var state = endpoints[address] else {
            return strategy == .leastRequest ? 0 : Double(PeakEWMA.initial.nanoseconds)
        }
        if strategy == .leastRequest { return Double(state.inFlight) }
        let value = state.latency.cost(inFlight: state.inFlight, at: now)
        endpoints[address] = state
        return value
    }

    /// How one try ended: the endpoint has one request less in flight, a first-byte latency for peak-EWMA, and
    /// a success or failure for outlier detection. Returns how long the endpoint was ejected for, if this ejected it.
    @discardableResult
    func attemptEnded(_ report: AttemptReport) -> TimeAmount? {
        let address = report.endpoint.address
        guard var state = endpoints[address] else { return nil }
        state.inFlight = max(0, state.inFlight - 1)
        if let rtt = report.firstByte { state.latency.observe(rtt, at: report.at) }
        var ejectedFor: TimeAmount?
        switch report.result {
        case .succeeded:
            state.health.succeeded(at: report.at)
        case .failed:
            let wasEjected = state.health.isEjected(at: report.at)
            ejectedFor = state.health.failed(at: report.at, rules: policy.outlier, mayEject: mayEject(at: report.at))
            if ejectedFor != nil, !wasEjected { ejectedCount += 1 }
        case .neutral:
            break
        }
        endpoints[address] = state
        if let ejectedFor { onEjection?(address, ejectedFor) }
        return ejectedFor
    }

    /// A pick whose try never started (the client left while discovery answered).
    func abandoned(_ endpoint: EndpointTarget) {
        guard var state = endpoints[endpoint.address] else { return }
        state.inFlight = max(0, state.inFlight - 1)
        endpoints[endpoint.address] = state
    }

    /// Whether one more endpoint may be ejected now: fewer than `maxEjectedPercent` of them are out (at least one
    /// may be when the percentage allows any), and never the last one in.
    private func mayEject(at now: NIODeadline) -> Bool {
        let total = endpoints.count
        guard total > 1, policy.outlier.maxEjectedPercent > 0 else { return false }
        ejectedCount = endpoints.values.reduce(0) { $0 + ($1.health.isEjected(at: now) ? 1 : 0) }
        let cap = min(max(total * policy.outlier.maxEjectedPercent / 100, 1), total - 1)
        return ejectedCount < cap
    }

    /// Whether `address` is ejected now (for `/config` and tests).
    func isEjected(_ address: HostPort, at now: NIODeadline = .now()) -> Bool {
        endpoints[address]?.health.isEjected(at: now) ?? false
    }

    func inFlight(_ address: HostPort) -> Int { endpoints[address]?.inFlight ?? 0 }

    private func adopt(_ policy: DestinationPolicy) {
        guard policy !== self.policy else { return }
        self.policy = policy
        budget.percent = policy.retries.budgetPercent
        budget.minPerSecond = Double(policy.retries.budgetMinPerSecond) / Double(loops)
    }

    /// Forgets endpoints discovery no longer lists (keeping those with requests in flight until they end).
    private func prune(_ snapshot: DiscoveredService) {
        revision = snapshot.revision
        let current = Set(snapshot.endpoints.map(\.address))
        endpoints = endpoints.filter { current.contains($0.key) || $0.value.inFlight > 0 }
        for endpoint in snapshot.endpoints where endpoints[endpoint.address] == nil {
            endpoints[endpoint.address] = EndpointState(latency: PeakEWMA(at: .now()))
        }
        ejectedCount = endpoints.values.reduce(0) { $0 + ($1.health.ejectedUntil != nil ? 1 : 0) }
    }
}

typealias TrafficPolicyStrategy = TrafficPolicy.LoadBalancing

/// The balancers of one event loop, one per destination, made on first use.
final class Balancers: @unchecked Sendable {
    let eventLoop: any EventLoop
    let trustDomain: TrustDomain
    private var byService: [ServiceName: Balancer] = [:]
    private let onEjection: (@Sendable (ServiceName, HostPort, TimeAmount) -> Void)?

    init(
        eventLoop: any EventLoop, trustDomain: TrustDomain,
        onEjection: (@Sendable (ServiceName, HostPort, TimeAmount) -> Void)? = nil
    ) {
        self.eventLoop = eventLoop
        self.trustDomain = trustDomain
        self.onEjection = onEjection
    }

    func balancer(for service: ServiceName) -> Balancer {
        eventLoop.preconditionInEventLoop()
        if let balancer = byService[service] { return balancer }
        let balancer = Balancer(service: service, trustDomain: trustDomain)
        if let onEjection { balancer.onEjection = { onEjection(service, $0, $1) } }
        byService[service] = balancer
        return balancer
    }
}
