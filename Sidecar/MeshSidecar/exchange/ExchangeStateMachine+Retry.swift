import NIOCore

/// Failed tries, retries and timeouts: what happens when a try fails before its response reached the client,
/// and when a deadline passes.
extension ExchangeStateMachine {
    /// Why a failed try was not sent again.
    enum GiveUp { case notRetryable, attemptsExhausted, budgetExhausted, noTimeLeft }

    /// The earliest time the active exchange needs the handler's timer: its deadline, its try's, its retry's.
    var nextDue: NIODeadline? {
        switch state {
        case .routing(let e), .forwarding(let e): e.nextDue
        case .idle, .draining, .closed, .modifying: nil
        }
    }

    /// Another try for a failed one if the rules, the attempts left, the kept body, the deadline and the budget
    /// allow (`sent`: the failed try had sent the request, so only a kept copy can be sent again). Gives the
    /// try's upstream back and waits out the backoff; nil when not retried, `e` noting why in `giveUp`.
    mutating func retry(
        _ failure: AttemptFailure, _ e: inout Exchange, sent: Bool, upstream: Finish.Upstream,
        report: AttemptReport?, at now: NIODeadline, _ withdraw: () -> Bool
    ) -> Action? {
        if let refusal = refusal(failure, &e, sent: sent, at: now, withdraw) {
            e.giveUp = refusal
            return nil
        }
        state = .routing(e)
        return .retry(Finish(upstream: upstream, completion: nil, closeAfter: false, attempt: report))
    }

    /// A retry, or the sidecar's answer naming why there is none: the try's own error, `retries_exhausted` when
    /// every try failed, `retry_budget_exhausted` when the budget refused one.
    mutating func retryOrAnswer(
        _ failure: AttemptFailure, _ error: ProxyError, _ e: inout Exchange, sent: Bool, upstream: Finish.Upstream,
        report: AttemptReport?, at now: NIODeadline, _ withdraw: () -> Bool
    ) -> Action {
        if let action = retry(failure, &e, sent: sent, upstream: upstream, report: report, at: now, withdraw) {
            return action
        }
        let answer: ProxyError
        switch e.giveUp {
        // A TLS failure names something an operator must fix; it stays itself even after retries.
        case .attemptsExhausted?
        where e.retries > 0 && error.cause != .tlsPeerIdentityMismatch
            && error.cause != .tlsHandshakeFailed:
            answer = ProxyError(
                .retriesExhausted, "all \(e.attempts) tries failed; the last with \(error)", timeout: error.timeout)
        case .budgetExhausted?:
            answer = ProxyError(
                .retryBudgetExhausted, "the destination's retry budget is spent; the try failed with \(error)",
                timeout: error.timeout)
        default:
            answer = error
        }
        return respond(with: answer, e, upstream: upstream, attempt: report, at: now)
    }

    private mutating func refusal(
        _ failure: AttemptFailure, _ e: inout Exchange, sent: Bool, at now: NIODeadline, _ withdraw: () -> Bool
    ) -> GiveUp? {
        // The routed head: its target is origin-form (`/items`), which routes in the policy match.
        guard let rules = e.plan.rules, e.upgrade == nil,
            rules.allows(failure, for: e.upstreamHead ?? e.request, isGRPC: e.isGRPC)
        else { return .notRetryable }
        if sent, e.replay?.replayable == nil { return .notRetryable }
        guard e.retries < rules.attempts else { return .attemptsExhausted }
        // A stale pooled connection is no sign of trouble: the request goes again at once.
        let delay =
            failure == .reset(pooled: true)
            ? .zero
            : Backoff.delay(
                retry: e.retries + 1, base: rules.backoffBase, max: rules.backoffMax, jitter: nextJitter())
        if let deadline = e.plan.deadline, now + delay >= deadline { return .noTimeLeft }
        guard withdraw() else {
            e.budgetExhausted = true
            return .budgetExhausted
        }
        e.retries += 1
        e.retryAt = now + delay
        e.wantsFreshConnection = failure == .reset(pooled: true)
        // A stale pooled connection says nothing against its endpoint: the retry may go there again.
        if let endpoint = e.endpoint, failure != .reset(pooled: true) { e.tried.append(endpoint) }
        e.perTryDeadline = nil
        e.responseStarted = nil
        e.status = 0
        return nil
    }

    /// The handler's timer: a deadline, a try's deadline or a retry's wait may be due.
    mutating func timerFired(at now: NIODeadline, withdraw: () -> Bool = { true }) -> Action {
        switch state {
        case .routing(var e):
            if let deadline = e.plan.deadline, now >= deadline { return timedOut(e.plan.deadlineKind, e, at: now) }
            if let at = e.retryAt, now >= at {
                e.retryAt = nil
                state = .routing(e)
                return .repick(excluding: e.tried, step: nextStep())
            }
        case .forwarding(var e):
            if let deadline = e.plan.deadline, now >= deadline { return timedOut(e.plan.deadlineKind, e, at: now) }
            if e.responseStarted == nil, let perTry = e.perTryDeadline, now >= perTry {
                state = .modifying
                let error = ProxyError.timedOut(
                    .perTry, "\(e.endpoint.map { "\($0)" } ?? "upstream") did not answer within the per-try timeout")
                let report = e.endTry(.failed, at: now)
                return retryOrAnswer(
                    .perTryTimeout, error, &e, sent: true, upstream: .release(reusable: false), report: report,
                    at: now, withdraw)
            }
        case .idle, .draining, .closed, .modifying:
            break
        }
        return .none
    }

    /// Nothing moved either way on the active exchange for the idle timeout.
    mutating func idleTimedOut(at now: NIODeadline) -> Action {
        switch state {
        case .routing(let e), .forwarding(let e): return timedOut(.idle, e, at: now)
        case .draining:
            state = .closed
            return .close
        case .idle, .closed, .modifying:
            return .none
        }
    }

    /// The endpoint for a retry (the balancer's pick after `repick`).
    mutating func retryTo(_ endpoint: EndpointTarget, step answered: Int) -> Action {
        guard case .routing(var e) = state, answered == step else { return .none }
        e.endpoint = endpoint
        e.attempts += 1
        e.tryOpen = true
        let fresh = e.wantsFreshConnection
        e.wantsFreshConnection = false
        state = .routing(e)
        return .acquire(endpoint, upgrade: false, fresh: fresh, step: nextStep())
    }

    /// A timeout ends the exchange: 504 `timeout` if no response has started, else the client's stream or
    /// connection is reset. The try in flight is given up; the endpoint is not blamed for the caller's deadline.
    mutating func timedOut(_ kind: ProxyError.Timeout, _ e: Exchange, at now: NIODeadline) -> Action {
        var e = e
        let elapsed = (now - e.started).nanoseconds / 1_000_000
        let upstream: Finish.Upstream = if case .forwarding = state { .release(reusable: false) } else { .none }
        // Also a try still waiting for its connection: the pick is given back.
        let report = e.endTry(.neutral, at: now)
        if e.responseStarted != nil {
            state = .closed
            var completion = e.completion(.cutShort(status: e.status), direction, at: now)
            completion.timeout = kind
            return .reset(Finish(upstream: upstream, completion: completion, closeAfter: true, attempt: report))
        }
        let tries = e.attempts == 1 ? "1 try" : "\(e.attempts) tries"
        let error = ProxyError.timedOut(
            kind, "no response within the \(kind.rawValue) timeout (\(elapsed) ms, \(tries))")
        return respond(with: error, e, upstream: upstream, attempt: report, at: now)
    }

    /// SplitMix64: a uniform value in 0..<1.
    private mutating func nextJitter() -> Double {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}
