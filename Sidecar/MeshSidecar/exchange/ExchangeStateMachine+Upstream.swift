import NIOCore
import NIOHTTP1

/// The route's and the upstream's events: where the request goes, its connection, and the response coming back.
extension ExchangeStateMachine {
    /// The route's decision: where to send the (rewritten) head, headers to add to the response, and the plan
    /// (retry rules, deadline). An answer for an older step is ignored.
    mutating func routed(
        _ head: HTTPRequestHead, to endpoint: EndpointTarget, responseHeaders: [(String, String)],
        plan: ExchangePlan = .none, step answered: Int? = nil, at now: NIODeadline = .now()
    ) -> Action {
        guard case .routing(var e) = state, answered == nil || answered == step else { return .none }
        e.endpoint = endpoint
        e.responseHeaders = responseHeaders
        e.upstreamHead = head
        e.plan = plan
        // The time limit counts from the request's arrival (discovery may have kept it waiting).
        if let limit = plan.timeLimit, e.plan.deadline == nil { e.plan.deadline = e.started + limit }
        e.attempts = 1
        e.tryOpen = true
        state = .routing(e)
        // Discovery kept it past its deadline: nothing is sent.
        if let deadline = e.plan.deadline, now >= deadline { return timedOut(e.plan.deadlineKind, e, at: now) }
        return .acquire(endpoint, upgrade: e.upgrade != nil, fresh: false, step: nextStep())
    }

    /// A connection (or stream) for the exchange is ready: send the request — what has arrived of it, or for a
    /// retry the whole of it as kept.
    mutating func attached(reused: Bool, at now: NIODeadline = .now(), step answered: Int? = nil) -> Action {
        guard case .routing(var e) = state, e.retryAt == nil, answered == nil || answered == step else {
            return .releaseUnused
        }
        state = .modifying
        e.reused = reused
        e.wrote = true
        e.attemptSent = now
        e.responseStarted = nil
        let head = e.headForTry(at: now)
        var parts = e.held
        if let kept = e.replay?.replayable {
            parts = kept + e.held
        } else if (e.plan.rules?.attempts ?? 0) > 0 || reused {
            // Kept from the first try on: any try may fail in a way that lets it be sent again.
            var replay = ReplayBuffer(limit: e.plan.rules?.bufferBytes ?? 64 * 1024)
            for part in e.held { replay.append(part) }
            e.replay = replay
        }
        if let perTry = e.plan.rules?.perTryTimeout { e.perTryDeadline = now + perTry }
        e.held = []
        e.heldBytes = 0
        state = .forwarding(e)
        return .sendFirst(head, parts)
    }

    /// Routing, discovery or the connection failed before any response byte: another try if it is a connect
    /// failure the rules allow retrying, else the sidecar answers. An answer for an older step is ignored.
    mutating func failed(
        _ error: ProxyError, at now: NIODeadline, step answered: Int? = nil, withdraw: () -> Bool = { true }
    ) -> Action {
        guard answered == nil || answered == step else { return .none }
        switch state {
        case .routing(var e):
            guard e.endpoint != nil, error.isConnectFailure else {
                return respond(with: error, e, upstream: .none, at: now)
            }
            let report = e.endTry(.failed, at: now)
            return retryOrAnswer(.unsent, error, &e, sent: false, upstream: .none, report: report, at: now, withdraw)
        case .forwarding(var e):
            let report = e.endTry(.failed, at: now)
            return retryOrAnswer(
                error.isConnectFailure ? .unsent : .reset(pooled: false), error, &e, sent: true,
                upstream: .release(reusable: false), report: report, at: now, withdraw)
        case .idle, .draining, .closed, .modifying:
            return .none
        }
    }

    mutating func upstreamHead(
        _ upstreamHead: HTTPResponseHead, at now: NIODeadline, withdraw: () -> Bool = { true }
    ) -> Action {
        guard case .forwarding(var e) = state else { return .none }
        if upstreamHead.status.code >= 200, let failure = e.failure(in: upstreamHead, direction: direction) {
            // A failure the rules may retry: decided before any of it goes to the client.
            state = .modifying
            var retried = e
            retried.responseStarted = now
            let report = retried.endTry(e.verdict(for: upstreamHead), at: now)
            if let retry = retry(
                failure, &retried, sent: true, upstream: .release(reusable: false), report: report, at: now,
                withdraw)
            {
                return retry
            }
            // Not retried: the try goes on and the client gets this answer as it is.
            e.budgetExhausted = retried.budgetExhausted
        }
        state = .modifying
        if e.holdsForGRPCStatus(upstreamHead) {
            // Through another sidecar a gRPC status always comes in trailers: the head waits for the first message
            // or the end, so that an answer without messages and with a status the rules retry can still be.
            e.heldHead = upstreamHead
            state = .forwarding(e)
            return .none
        }
        let head = e.responseHead(for: upstreamHead, at: now, closing: quiescing)
        state = .forwarding(e)
        return .writeHead(head)
    }

    mutating func upstreamBody(_ buffer: ByteBuffer, at now: NIODeadline = .now()) -> Action {
        guard case .forwarding(var e) = state else { return .none }
        state = .modifying
        e.responseBytes += buffer.readableBytes
        if let held = e.heldHead {
            e.heldHead = nil
            let head = e.responseHead(for: held, at: now, closing: quiescing)
            state = .forwarding(e)
            return .writeHeadAndBody(head, buffer)
        }
        state = .forwarding(e)
        return .writeBody(buffer)
    }

    mutating func upstreamEnd(
        _ trailers: HTTPHeaders?, at now: NIODeadline, withdraw: () -> Bool = { true }
    ) -> Action {
        guard case .forwarding(var e) = state else { return .none }
        var heldHead: HTTPResponseHead?
        if let held = e.heldHead {
            state = .modifying
            e.heldHead = nil
            if let text = trailers?.first(name: "grpc-status"), let code = Int(text), code != 0 {
                // An answer with no message and a status: a trailers-only answer in all but form.
                var retried = e
                retried.responseStarted = now
                let report = retried.endTry(code == 14 ? .failed : .succeeded, at: now)
                if let retry = retry(
                    .grpc(code), &retried, sent: true, upstream: .release(reusable: false), report: report,
                    at: now, withdraw)
                {
                    return retry
                }
                e.budgetExhausted = retried.budgetExhausted
            }
            heldHead = e.responseHead(for: held, at: now, closing: quiescing)
            if trailers?.first(name: "grpc-status") == "14" { e.verdict = .failed }
        }
        let attempt = e.endTry(e.verdict, at: now)
        if e.switchingProtocols {
            state = .closed
            return .splice(
                Finish(
                    upstream: .none, completion: e.completion(.upgraded, direction, at: now), closeAfter: false,
                    attempt: attempt))
        }
        let finish = Finish(
            upstream: .release(reusable: e.upstreamReusable),
            completion: e.completion(.responded(status: e.status), direction, at: now),
            closeAfter: false, attempt: attempt)
        let end = GRPCTrailersOnly.merge(e.statusTrailers, into: trailers)
        if let heldHead { return .writeHeadAndEnd(heldHead, end, settle(e, finish)) }
        return .writeEnd(end, settle(e, finish))
    }

    /// The upstream connection or stream failed or closed mid-exchange. `unprocessed`: the peer said it did not
    /// process the request (an HTTP/2 REFUSED_STREAM, or a GOAWAY below the stream's id).
    mutating func upstreamClosed(
        unprocessed: Bool = false, at now: NIODeadline, withdraw: () -> Bool = { true }
    ) -> Action {
        guard case .forwarding(var e) = state, let endpoint = e.endpoint else { return .none }
        if e.responseStarted != nil {
            // Part of the response is already out: the only honest signal left is to reset.
            state = .closed
            return .reset(
                Finish(
                    upstream: .release(reusable: false),
                    completion: e.completion(.upstreamReset(status: e.status), direction, at: now), closeAfter: true,
                    attempt: e.endTry(.failed, at: now)))
        }
        let error = ProxyError(.upstreamReset, "\(endpoint) closed the connection before responding")
        let failure: AttemptFailure = unprocessed ? .unsent : .reset(pooled: e.reused)
        // A stale idle connection is the pool's race with the server's idle timeout, not the endpoint's fault.
        let report = e.endTry(e.reused ? .neutral : .failed, at: now)
        return retryOrAnswer(
            failure, error, &e, sent: true, upstream: .release(reusable: false), report: report, at: now, withdraw)
    }
}
