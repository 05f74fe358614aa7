import NIOCore
import NIOHTTP1

/// The life of the HTTP exchanges on one downstream HTTP/1.1 connection or HTTP/2 stream, as a value: it takes
/// events (request parts, the route and the lease, response parts, resets) and returns the action the handler
/// performs. No I/O, no clock (times come with the events), no logging.
///
/// One exchange is active at a time. Requests a client pipelines behind it are kept, in order, in a bounded
/// queue of our own (NIO's pipelining helper would toggle read interest on every request); reads stop only
/// while that queue or a request body held during routing is over its bound.
struct ExchangeStateMachine {
    private enum State {
        case idle
        case routing(Exchange)
        case forwarding(Exchange)
        /// The response is complete; the rest of the request body is read and dropped.
        case draining(Exchange)
        case closed
        /// Only while an event mutates the exchange it took out, so its buffers are not copied on write.
        case modifying
    }

    private var state = State.idle
    private var pipelined = PipelinedRequests()
    /// Draining (or the client pipelined past the cap): the connection closes after the exchanges it has.
    private var quiescing = false
    /// Pipelined requests are no longer taken.
    private var refusing = false
    let direction: Direction
    let limits: Limits

    init(direction: Direction, limits: Limits = Limits()) {
        self.direction = direction
        self.limits = limits
    }

    /// Whether the handler should read more from the client now.
    var wantsRead: Bool {
        if pipelined.heads >= limits.pipelinedRequests || pipelined.bytes > limits.heldBytes { return false }
        // Draining reads the active request to its end, and nothing after it.
        switch state {
        case .routing(let e): return e.heldBytes <= limits.heldBytes && !(quiescing && e.requestEnded)
        case .forwarding(let e), .draining(let e): return !(quiescing && e.requestEnded)
        case .idle: return !quiescing
        case .closed, .modifying: return false
        }
    }

    var isIdle: Bool { if case .idle = state { true } else { false } }

    // MARK: client events

    mutating func requestHead(_ head: HTTPRequestHead, at now: NIODeadline) -> Action {
        switch state {
        case .idle:
            break
        case .routing(let e), .forwarding(let e), .draining(let e):
            // Only a request whose predecessor has fully arrived can follow it (the decoder guarantees it).
            guard e.requestEnded else { return abort(at: now) }
            guard !quiescing else {
                // Draining, or over the cap: what was queued is answered, nothing more is taken.
                refusing = true
                return .none
            }
            guard pipelined.heads < limits.pipelinedRequestsCap else {
                quiescing = true
                refusing = true
                return .none
            }
            pipelined.append(.head(head))
            return .none
        case .closed, .modifying:
            return .none
        }
        let exchange = Exchange(request: head, started: now)
        if head.headers[canonicalForm: "host"].count > 1 {
            // Two Hosts name two destinations; peers disagree on which wins (RFC 9112 §3.2: respond 400).
            state = .routing(exchange)
            return failed(ProxyError(.malformedRequest, "request has more than one Host header"), at: now)
        }
        state = .routing(exchange)
        return .route(exchange.headToRoute)
    }

    mutating func requestBody(_ buffer: ByteBuffer) -> Action {
        requestPart(.body(.byteBuffer(buffer)), pipelined: .body(buffer))
    }

    mutating func requestEnd(_ trailers: HTTPHeaders?) -> Action {
        requestPart(.end(trailers), pipelined: .end(trailers))
    }

    /// A body part or the request's end: held while routing, sent on while forwarding, dropped while draining
    /// (where the end finishes the exchange), queued if it belongs to a pipelined request.
    private mutating func requestPart(_ part: HTTPClientRequestPart, pipelined queued: HTTPServerRequestPart)
        -> Action
    {
        let isEnd = if case .end = part { true } else { false }
        switch state {
        case .routing(var e) where !e.requestEnded:
            state = .modifying
            e.received(part, holding: true)
            state = .routing(e)
            return .none
        case .forwarding(var e) where !e.requestEnded:
            state = .modifying
            e.received(part, holding: false)
            state = .forwarding(e)
            return .send(part, flush: isEnd)
        case .draining(let e) where !e.requestEnded:
            guard isEnd else { return .none }
            // The response went out before the request was done; now it is.
            let close = closesAfter(e)
            state = close ? .closed : .idle
            return .exchangeDone(close: close)
        case .idle, .closed, .modifying:
            return .none
        case .routing, .forwarding, .draining:
            if !refusing { pipelined.append(queued) }
            return .none
        }
    }

    /// The next part a client pipelined, once the active exchange can take it (feed it back as an event).
    mutating func nextPipelinedPart() -> HTTPServerRequestPart? {
        switch state {
        case .idle: break
        case .routing(let e), .forwarding(let e), .draining(let e): if e.requestEnded { return nil }
        case .closed, .modifying: return nil
        }
        return pipelined.popFirst()
    }

    /// The server is draining: finish the active exchange, then close.
    mutating func quiesce() -> Action {
        quiescing = true
        if case .idle = state, pipelined.isEmpty {
            state = .closed
            return .close
        }
        return .none
    }

    mutating func downstreamClosed(at now: NIODeadline) -> Action { cutShort(at: now, close: false) ?? .none }

    // MARK: route and lease

    /// The route's decision: where to send the (rewritten) head, and headers to add to the response.
    mutating func routed(_ head: HTTPRequestHead, to endpoint: EndpointTarget, responseHeaders: [(String, String)])
        -> Action
    {
        guard case .routing(var e) = state else { return .none }
        e.endpoint = endpoint
        e.responseHeaders = responseHeaders
        e.upstreamHead = head
        state = .routing(e)
        return .acquire(endpoint, upgrade: e.upgrade != nil)
    }

    /// A connection (or stream) for the exchange is ready: send what the request has so far.
    mutating func attached(reused: Bool) -> Action {
        guard case .routing(var e) = state else { return .releaseUnused }
        e.reused = reused
        e.attempts += 1
        // Only a pooled connection can turn out to be stale, so only then is the request kept for a replay.
        guard let head = e.upstreamHead else { preconditionFailure("attached before routed") }
        if reused, e.attempts == 1 {
            var replay = ReplayBuffer(head: head)
            for part in e.held { replay.append(part) }
            e.replay = replay
        }
        let parts = e.held
        e.held = []
        e.heldBytes = 0
        state = .forwarding(e)
        return .sendFirst(head, parts)
    }

    /// Routing, discovery or the connection failed before any response byte: the sidecar answers.
    mutating func failed(_ error: ProxyError, at now: NIODeadline) -> Action {
        switch state {
        case .routing(let e): return respond(with: error, e, upstream: .none, at: now)
        case .forwarding(let e): return respond(with: error, e, upstream: .release(reusable: false), at: now)
        case .idle, .draining, .closed, .modifying: return .none
        }
    }

    // MARK: upstream events

    mutating func upstreamHead(_ upstreamHead: HTTPResponseHead, at now: NIODeadline) -> Action {
        guard case .forwarding(var e) = state else { return .none }
        state = .modifying
        let head = e.responseHead(for: upstreamHead, at: now, closing: quiescing)
        state = .forwarding(e)
        return .writeHead(head)
    }

    mutating func upstreamBody(_ buffer: ByteBuffer) -> Action {
        guard case .forwarding(var e) = state else { return .none }
        e.responseBytes += buffer.readableBytes
        state = .forwarding(e)
        return .writeBody(buffer)
    }

    mutating func upstreamEnd(_ trailers: HTTPHeaders?, at now: NIODeadline) -> Action {
        guard case .forwarding(let e) = state else { return .none }
        if e.switchingProtocols {
            state = .closed
            return .splice(
                Finish(upstream: .none, completion: e.completion(.upgraded, direction, at: now), closeAfter: false))
        }
        let finish = Finish(
            upstream: .release(reusable: e.upstreamReusable),
            completion: e.completion(.responded(status: e.status), direction, at: now),
            closeAfter: false)
        return .writeEnd(GRPCTrailersOnly.merge(e.statusTrailers, into: trailers), settle(e, finish))
    }

    /// The upstream connection failed or closed mid-exchange.
    mutating func upstreamClosed(at now: NIODeadline) -> Action {
        guard case .forwarding(var e) = state, let endpoint = e.endpoint else { return .none }
        if e.responseStarted != nil {
            // Part of the response is already out: the only honest signal left is to reset.
            state = .closed
            return .reset(
                Finish(
                    upstream: .release(reusable: false),
                    completion: e.completion(.upstreamReset(status: e.status), direction, at: now), closeAfter: true))
        }
        if e.reused, e.requestEnded, let parts = e.replay?.replayable {
            // A pooled connection the server had closed before it saw the request: send it again, once.
            e.held = Array(parts.dropFirst())
            e.replay = nil
            state = .routing(e)
            return .replay(endpoint, Finish(upstream: .release(reusable: false), completion: nil, closeAfter: false))
        }
        return respond(
            with: ProxyError(.upstreamReset, "\(endpoint) closed the connection before responding"), e,
            upstream: .release(reusable: false), at: now)
    }

    // MARK: helpers

    private mutating func respond(
        with error: ProxyError, _ e: Exchange, upstream: Finish.Upstream, at now: NIODeadline
    ) -> Action {
        let close = closesAfter(e)
        let response = ProxyErrorResponse.make(
            error, requestHeaders: e.request.headers, version: e.request.version, close: close)
        let status = Int(ProxyErrorResponse.status(for: error.cause).code)
        let completion = e.completion(.failed(error.cause, status: status), direction, at: now)
        let finish = Finish(upstream: upstream, completion: completion, closeAfter: close)
        if close {
            state = .closed
            return .respond(response, finish)
        }
        var ended = e
        ended.held = []
        ended.heldBytes = 0
        return .respond(response, settle(ended, finish))
    }

    /// After the response's end: the next request, draining the rest of this one, or closing.
    private mutating func settle(_ e: Exchange, _ finish: Finish) -> Finish {
        var finish = finish
        if !e.requestEnded {
            state = .draining(e)
        } else if closesAfter(e) {
            state = .closed
            finish.closeAfter = true
        } else {
            state = .idle
        }
        return finish
    }

    /// Whether the connection closes once `e` is done: the client asked for it, or the server is draining and no
    /// request is queued behind it.
    private func closesAfter(_ e: Exchange) -> Bool { !e.request.keepsConnection || (quiescing && pipelined.isEmpty) }

    /// A client that broke the protocol mid-exchange: reset, giving up the upstream, with the one completion.
    private mutating func abort(at now: NIODeadline) -> Action { cutShort(at: now, close: true) ?? .close }

    /// The client is gone (or must go) while an exchange is routing or forwarding: the exchange completes as
    /// `downstreamClosed` and a half-used upstream is never reused. nil when no exchange was active.
    private mutating func cutShort(at now: NIODeadline, close: Bool) -> Action? {
        let (exchange, upstream): (Exchange, Finish.Upstream)
        switch state {
        case .routing(let e): (exchange, upstream) = (e, .none)
        case .forwarding(let e): (exchange, upstream) = (e, .release(reusable: false))
        case .idle, .draining, .closed, .modifying:
            state = .closed
            return nil
        }
        state = .closed
        let completion = exchange.completion(.downstreamClosed, direction, at: now)
        return .reset(Finish(upstream: upstream, completion: completion, closeAfter: close))
    }
}
