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
    enum State {
        case idle
        case routing(Exchange)
        case forwarding(Exchange)
        /// The response is complete; the rest of the request body is read and dropped.
        case draining(Exchange)
        case closed
        /// Only while an event mutates the exchange it took out, so its buffers are not copied on write.
        case modifying
    }

    var state = State.idle
    /// Numbers each request for a route, connection or endpoint the machine asks for; an answer carrying an
    /// older number belongs to a try that has ended (timed out, retried) and is given back unused.
    private(set) var step = 0
    /// Draws the jitter of retry backoffs (SplitMix64: a value, seeded per machine).
    var random: UInt64
    private var pipelined = PipelinedRequests()
    /// Draining (or the client pipelined past the cap): the connection closes after the exchanges it has.
    private(set) var quiescing = false
    /// Pipelined requests are no longer taken.
    private var refusing = false
    let direction: Direction
    let limits: Limits

    init(direction: Direction, limits: Limits = Limits(), seed: UInt64 = .random(in: 0 ... .max)) {
        self.direction = direction
        self.limits = limits
        random = seed
    }

    /// The next step number, for an action that will be answered later.
    mutating func nextStep() -> Int {
        step &+= 1
        return step
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
    var isDraining: Bool { if case .draining = state { true } else { false } }

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
        return .route(exchange.headToRoute, step: nextStep())
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

    // MARK: helpers

    mutating func respond(
        with error: ProxyError, _ e: Exchange, upstream: Finish.Upstream, attempt: AttemptReport? = nil,
        at now: NIODeadline
    ) -> Action {
        var e = e
        // A try still open (its connection not yet there) is given back as saying nothing about the endpoint.
        let attempt = attempt ?? e.endTry(.neutral, at: now)
        let close = closesAfter(e)
        let response = ProxyErrorResponse.make(
            error, requestHeaders: e.request.headers, version: e.request.version, close: close,
            unprocessed: direction == .inbound && !e.wrote
                && (error.isConnectFailure || error.cause == .policyUnavailable))
        let status = Int(ProxyErrorResponse.status(for: error).code)
        var completion = e.completion(.failed(error.cause, status: status), direction, at: now)
        completion.timeout = error.timeout
        let finish = Finish(
            upstream: upstream, completion: completion, closeAfter: close, attempt: attempt)
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
    mutating func settle(_ e: Exchange, _ finish: Finish) -> Finish {
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
        var ended = exchange
        let attempt = ended.endTry(.neutral, at: now)
        return .reset(Finish(upstream: upstream, completion: completion, closeAfter: close, attempt: attempt))
    }
}
