import MeshControlClient
import MeshCore
import NIOCore

/// Picks the endpoint for each request to one destination, and hears how each exchange it picked for ended
/// (`completed`). Round robin for now; peak-EWMA takes this seat next, fed by the same completions. One per
/// destination per event loop, used only on that loop: no lock on the request path.
final class RoundRobinBalancer: @unchecked Sendable {
    let service: ServiceName
    /// The identity every endpoint of the destination must prove, and the response header naming it: computed
    /// once per destination, not per request.
    let identity: SPIFFEID
    let identityHeader: (String, String)
    private var next = 0
    /// Exchanges picked for each endpoint and not yet completed.
    private(set) var inFlight: [HostPort: Int] = [:]
    private(set) var completions = 0
    private(set) var failures = 0

    init(service: ServiceName, trustDomain: TrustDomain) {
        self.service = service
        identity = .workload(service, in: trustDomain)
        identityHeader = (OutboundRouter.upstreamIdentityHeader, identity.uri)
    }

    /// The next endpoint of a non-empty list, in turn. `tracked` picks are counted in flight until their
    /// completion arrives (an opaque TCP relay has no exchange completion yet, so its picks are not).
    func pick(_ endpoints: [DiscoveredEndpoint], tracked: Bool = true) -> DiscoveredEndpoint {
        precondition(!endpoints.isEmpty, "pick from no endpoints")
        let endpoint = endpoints[next % endpoints.count]
        next &+= 1
        if tracked { inFlight[endpoint.address, default: 0] += 1 }
        return endpoint
    }

    func completed(_ completion: ExchangeCompletion) {
        completions += 1
        if !completion.endpointSucceeded { failures += 1 }
        if let endpoint = completion.endpoint { settle(endpoint.address) }
    }

    /// A pick whose exchange ended before it used the endpoint (the client left while discovery answered).
    func abandoned(_ endpoint: EndpointTarget) { settle(endpoint.address) }

    private func settle(_ address: HostPort) {
        guard let count = inFlight[address] else { return }
        inFlight[address] = count > 1 ? count - 1 : nil
    }
}

/// The balancers of one event loop, one per destination, made on first use.
final class Balancers: @unchecked Sendable {
    let eventLoop: any EventLoop
    let trustDomain: TrustDomain
    private var byService: [ServiceName: RoundRobinBalancer] = [:]

    init(eventLoop: any EventLoop, trustDomain: TrustDomain) {
        self.eventLoop = eventLoop
        self.trustDomain = trustDomain
    }

    func balancer(for service: ServiceName) -> RoundRobinBalancer {
        eventLoop.preconditionInEventLoop()
        if let balancer = byService[service] { return balancer }
        let balancer = RoundRobinBalancer(service: service, trustDomain: trustDomain)
        byService[service] = balancer
        return balancer
    }
}
