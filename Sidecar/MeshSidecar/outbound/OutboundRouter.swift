import MeshControlClient
import MeshCore
import NIOCore
import NIOHTTP1

/// Outbound routing, one step per stack layer: route (the request names a logical target) → the destination's
/// policy → its routes (the first that matches: a subset, a fault) → faults (a delay, an abort) → discovery and
/// the destination's balancer (the subset of the route or of the weighted split, then an endpoint, which must
/// prove exactly `spiffe://<td>/svc/<service>`). Decided on the connection's event loop, at once unless
/// discovery has not yet answered for a new destination or a fault delays the request.
struct OutboundRouter: RequestRouter {
    static let upstreamIdentityHeader = "x-mesh-upstream-identity"
    let cache: EndpointCache
    let balancers: PerEventLoop<Balancers>
    let policy: SidecarPolicy
    /// Set for an upstream bind: every request goes to this service.
    let fixedService: ServiceName?
    var metrics: SidecarMetrics?

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
        // routes: the first route of the destination's policy the request matches
        let route = destination.routes.isEmpty ? nil : destination.routes.route(for: head)
        // faults: an abort answers here; a delay holds the request before it goes on
        guard let fault = route?.fault else { return discover(head, target, balancer, destination, route, channel) }
        let abort = fault.abort.flatMap { balancer.chance($0.chance) ? $0 : nil }
        let abortError = abort.map { abort in
            metrics?.access.faults[.abort]!.increment()
            var error = ProxyError(.faultInjected, "route \(route!.name) of \(target.service): abort injected")
            error.httpStatus = abort.httpStatus
            error.grpcStatus = abort.grpcStatus
            return error
        }
        if let delay = fault.delay, balancer.chance(delay.chance) {
            metrics?.access.faults[.delay]!.increment()
            let loop = channel.eventLoop
            let head = head
            // The delay counts in the request's time limit (the policy's or the caller's): it ends at the limit
            // with a timeout rather than outlasting it.
            let limit = ExchangePlan.make(rules: nil, requestTimeout: destination.requestTimeout, headers: head.headers)
            let timedOut = limit.timeLimit.flatMap { $0 < delay.duration ? $0 : nil }
            return .pending(
                loop.scheduleTask(in: timedOut ?? delay.duration) {}.futureResult.flatMap {
                    () -> EventLoopFuture<RoutedRequest> in
                    if timedOut != nil {
                        return loop.makeFailedFuture(
                            ProxyError.timedOut(
                                limit.deadlineKind,
                                "the time limit ran out during an injected delay of route \(route!.name)"))
                    }
                    if let abortError { return loop.makeFailedFuture(abortError) }
                    switch discover(head, target, balancer, destination, route, channel) {
                    case .ready(let routed): return loop.makeSucceededFuture(routed)
                    case .failed(let error): return loop.makeFailedFuture(error)
                    case .pending(let future): return future
                    }
                })
        }
        if let abortError { return .failed(abortError) }
        return discover(head, target, balancer, destination, route, channel)
    }

    /// The endpoints of the destination (at once when cached), then the pick.
    private func discover(
        _ head: HTTPRequestHead, _ target: LogicalTarget, _ balancer: Balancer, _ destination: DestinationPolicy,
        _ route: TrafficRoutes.Route?, _ channel: any Channel
    ) -> RouteDecision {
        switch cache.lookup(target.service, on: channel.eventLoop) {
        case .ready(let snapshot):
            return Self.pick(snapshot, head: head, balancer: balancer, policy: destination, route: route)
        case .pending(let future):
            return .pending(
                future.flatMapThrowing { snapshot in
                    switch Self.pick(snapshot, head: head, balancer: balancer, policy: destination, route: route) {
                    case .ready(let routed): return routed
                    case .failed(let error): throw error
                    case .pending: preconditionFailure("pick never waits")
                    }
                })
        }
    }

    private static func pick(
        _ snapshot: DiscoveredService, head: HTTPRequestHead, balancer: Balancer, policy: DestinationPolicy,
        route: TrafficRoutes.Route?
    ) -> RouteDecision {
        guard snapshot.known else {
            return .failed(
                ProxyError(
                    .unknownService, "no service named \"\(snapshot.service)\" is registered with the control plane"))
        }
        guard !snapshot.endpoints.isEmpty else {
            return .failed(ProxyError(.noEndpoints, "service \"\(snapshot.service)\" has no endpoints"))
        }
        // subset: the route's, or one of the weighted split's (every endpoint when there is neither)
        var subset: SubsetSelector?
        if !policy.routes.isEmpty {
            switch balancer.subset(for: route, in: policy.routes, snapshot) {
            case .success(let chosen): subset = chosen
            case .failure(let error): return .failed(error)
            }
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
        let endpoint = balancer.pick(snapshot, policy: policy, subset: subset, at: now)
        var routed = RoutedRequest(
            head: head, endpoint: EndpointTarget(address: endpoint.address, identity: balancer.identity),
            responseHeaders: [balancer.identityHeader], balancer: balancer, policy: policy,
            plan: .make(rules: policy.retries, requestTimeout: policy.requestTimeout, headers: head.headers),
            idleTimeout: policy.idleTimeout)
        routed.subset = subset
        routed.routeName = route?.name
        return .ready(routed)
    }

    /// The destination: the routed service, or (routing failed) the one the request named if discovery knows it
    /// (else `unknown`: a typo, a flood of made-up names or a slow control plane must not become series).
    func peer(of routed: RoutedRequest?, head: HTTPRequestHead?, cause: String?) -> (PeerLabels, route: String) {
        if let balancer = routed?.balancer {
            let service = balancer.service.value
            return (
                PeerLabels(service: service, identity: balancer.identityHeader.1),
                routed?.routeName.map { "\(service)/\($0)" } ?? service
            )
        }
        guard var head, cause != ProxyError.Cause.unknownService.rawValue,
            cause != ProxyError.Cause.invalidAuthority.rawValue,
            let target = try? LogicalTarget.route(&head, fixedService: fixedService),
            cache.snapshot(target.service)?.known == true
        else { return (.unknown, "unknown") }
        return (PeerLabels(service: target.service.value, identity: nil), target.service.value)
    }

    func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError> {
        guard let balancer = routed.balancer, let policy = routed.policy,
            let snapshot = cache.snapshot(balancer.service), !snapshot.endpoints.isEmpty,
            routed.subset.map({ !balancer.members(of: $0, in: snapshot).isEmpty }) ?? true
        else {
            return .failure(ProxyError(.noEndpoints, "no endpoints left to retry on"))
        }
        let endpoint = balancer.pick(
            snapshot, policy: policy, subset: routed.subset, excluding: excluding.map(\.address))
        return .success(EndpointTarget(address: endpoint.address, identity: balancer.identity))
    }
}
