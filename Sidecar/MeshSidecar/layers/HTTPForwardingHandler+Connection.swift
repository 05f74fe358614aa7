import NIOCore

/// The forwarder's route, connection and settling steps: the route's answer taken, a lease for each try from the
/// loop's pool (within the destination's circuit-breaker limits) put to use when it arrives, and each try's and
/// exchange's end settled (the lease given back, the balancer and the metrics told).
extension HTTPForwardingHandler {
    /// The route step's answer: remember the route, and let the machine ask for a connection.
    func use(_ routed: RoutedRequest, step: Int) {
        let action = machine.routed(
            routed.head, to: routed.endpoint, responseHeaders: routed.responseHeaders, plan: routed.plan, step: step)
        if case .none = action {
            // The client left while discovery answered: the pick will see no try, the exchange no completion.
            routed.balancer?.abandoned(routed.endpoint)
            routed.balancer?.exchangeEnded()
            return
        }
        self.routed = routed
        startIdleChecks(routed.idleTimeout)
        perform(action)
    }

    /// The upstream's fate, the try's report to its balancer, and the one completion event of an exchange.
    func settle(_ finish: ExchangeStateMachine.Finish) {
        if case .release(let reusable) = finish.upstream, let lease {
            self.lease = nil
            pool.release(lease, reusable: reusable)
        }
        if let attempt = finish.attempt {
            routed?.balancer?.attemptEnded(attempt)
            hop?.endAttempt(result: attempt.result)
        }
        if let completion = finish.completion {
            let (peer, route) = router.peer(of: routed, head: hop?.request, cause: completion.cause)
            telemetry.completed(completion, hop: &hop, peer: peer, route: route)
            hop = nil
            routed?.balancer?.exchangeEnded()
            routed = nil
            stopWaiting()
            // A request still arriving after its response keeps being watched for idleness.
            if !machine.isDraining { idleCheckAt = nil }
        }
    }

    /// Takes a retry from the destination's budget (the inbound side, toward its own app, has none).
    func withdraw(at now: NIODeadline) -> Bool { routed?.balancer?.budget.withdraw(at: now) ?? true }

    /// A failure of the route or the connection as the sidecar answers it.
    static func proxyError(_ error: any Error) -> ProxyError {
        error as? ProxyError ?? ProxyError(.connectFailed, "\(error)")
    }

    /// A connection or stream for a try: at once from the pool, or later. A request that would wait in the
    /// endpoint's queue counts as pending for the destination's circuit breaker, and past `maxPendingRequests`
    /// it is refused at once instead.
    func acquire(_ endpoint: EndpointTarget, upgrade: Bool, fresh: Bool, step: Int) {
        let policy = routed?.policy
        let connect = policy?.connectTimeout ?? ConnectionPool.defaultConnectTimeout
        let cap = policy?.circuit.maxConnectionsPerEndpoint ?? .max
        if !upgrade, !fresh, let balancer = routed?.balancer, let policy, pool.wouldWait(endpoint, maxConnections: cap)
        {
            guard balancer.pendingRequests < policy.circuit.maxPendingRequests else {
                let error = ProxyError(
                    .circuitOpen,
                    "\(balancer.pendingRequests) requests to \(balancer.service) are waiting for a connection (circuitBreaking.maxPendingRequests)"
                )
                perform(machine.failed(error, at: .now(), step: step))
                return
            }
            balancer.pendingRequests += 1
            waiting = (balancer, step, endpoint, nil)
        }
        let acquired: Acquired =
            if upgrade {
                .pending(pool.acquireForUpgrade(endpoint, connectTimeout: connect))
            } else if fresh {
                .pending(pool.acquireFresh(endpoint, connectTimeout: connect))
            } else {
                pool.acquire(endpoint, connectTimeout: connect, maxConnections: cap)
            }
        switch acquired {
        case .ready(let lease):
            stopWaiting(step)
            adopt(lease, step: step)
        case .pending(let future):
            if waiting?.step == step { waiting?.lease = future }
            future.assumeIsolated().whenComplete { result in
                self.stopWaiting(step)
                switch result {
                case .success(let lease): self.adopt(lease, step: step)
                case .failure(let error):
                    let now = NIODeadline.now()
                    self.perform(
                        self.machine.failed(
                            Self.proxyError(error), at: now, step: step, withdraw: { self.withdraw(at: now) }))
                }
            }
        }
    }

    /// The request counted as waiting for a connection no longer is: its connection came (for `step`), or its
    /// exchange ended (`nil`, whatever the step).
    func stopWaiting(_ step: Int? = nil) {
        guard let (balancer, counted, endpoint, lease) = waiting, step == nil || step == counted else { return }
        balancer.pendingRequests -= 1
        waiting = nil
        // The exchange ended while it waited: its place in the queue goes too.
        if step == nil, let lease { pool.abandon(lease, target: endpoint) }
    }

    private func adopt(_ lease: UpstreamLease, step: Int) {
        // Only an idle HTTP/1.1 keep-alive connection can be stale (a stream on a live h2 connection is not).
        let pooled = lease.reused && lease.poolable && lease.channel.parent == nil
        let action = machine.attached(reused: pooled, at: .now(), step: step)
        if case .releaseUnused = action {
            // The client went away, or the try ended (timed out, refused), while we were connecting: an idle
            // keep-alive connection goes back unused; a stream or a connection of its own (an upgrade) is closed.
            pool.release(lease, reusable: lease.poolable)
            return
        }
        lease.responses.sink = self
        self.lease = lease
        perform(action)
    }
}
