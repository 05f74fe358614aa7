import MeshControlClient
import MeshCore
import NIOCore
import NIOHTTP1

/// Outbound routing, one step per stack layer: route (the request names a logical target) → the destination's
/// policy → discovery and the destination's balancer (an endpoint, which must prove exactly
/// `spiffe://<td>/svc/<service>`). Decided on the connection's event loop, at once unless discovery has not
/// yet answered for a new destination.
struct OutboundRouter: RequestRouter {
    static let upstreamIdentityHeader = "x-mesh-upstream-identity"
    let cache: EndpointCache
    let balancers: PerEventLoop<Balancers>
    let policy: SidecarPolicy
    /// Set for an upstream bind: every request goes to this service.
    let fixedService: ServiceName?

    func route(_ head: HTTPRequestHead, channel: any Channel) -> RouteDecision {
        var head = head
        // route: the authority (or the bind) names the destination service
        let target: LogicalTarget
        do { target = try LogicalTarget.route(&head, fixedService: fixedService) } catch {
            return .failed(error)
        }
        // policy: the destination's compiled client policy, read once for this request
        let destination = policy.snapshot.destination(target.service)
        // balancer: this loop's balancer for the destination picks among discovery's endpoints
        let balancer = balancers[channel.eventLoop].balancer(for: target.service)
        switch cache.lookup(target.service, on: channel.eventLoop) {
        case .ready(let snapshot):
            return Self.pick(snapshot, head: head, balancer: balancer, policy: destination)
        case .pending(let future):
            return .pending(
                future.flatMapThrowing { snapshot in
                    switch Self.pick(snapshot, head: head, balancer: balancer, policy: destination) {
                    case .ready(let routed): return routed
                    case .failed(let error): throw error
                    case .pending: preconditionFailure("pick never waits")
                    }
                })
        }
    }

    private static func pick(
        _ snapshot: DiscoveredService, head: HTTPRequestHead, balancer: Balancer, policy: DestinationPolicy
    ) -> RouteDecision {
        guard snapshot.known else {
            return .failed(
                ProxyError(
                    .unknownService, "no service named \"\(snapshot.service)\" is registered with the control plane"))
        }
        guard !snapshot.endpoints.isEmpty else {
            return .failed(ProxyError(.noEndpoints, "service \"\(snapshot.service)\" has no endpoints"))
        }
        // circuit breaking: over the destination's limit of requests in flight, refused at once
        guard balancer.admit(policy) else {
            return .failed(
                ProxyError(
                    .circuitOpen,
                    "\(balancer.activeRequests) requests to \(snapshot.service) are in flight (circuitBreaking.maxRequests)"
                ))
        }
        let now = NIODeadline.now()
        // retry budget: every admitted request adds its share
        balancer.budget.deposit(at: now)
        let endpoint = balancer.pick(snapshot, policy: policy, at: now)
        return .ready(
            RoutedRequest(
                head: head, endpoint: EndpointTarget(address: endpoint.address, identity: balancer.identity),
                responseHeaders: [balancer.identityHeader], balancer: balancer, policy: policy,
                plan: .make(rules: policy.retries, requestTimeout: policy.requestTimeout, headers: head.headers),
                idleTimeout: policy.idleTimeout))
    }

    func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError> {
        guard let balancer = routed.balancer, let policy = routed.policy,
            let snapshot = cache.snapshot(balancer.service), !snapshot.endpoints.isEmpty
        else {
            return .failure(ProxyError(.noEndpoints, "no endpoints left to retry on"))
        }
        let endpoint = balancer.pick(snapshot, policy: policy, excluding: excluding.map(\.address))
        return .success(EndpointTarget(address: endpoint.address, identity: balancer.identity))
    }
}
