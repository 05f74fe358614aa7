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
    private struct Exchange {
        let request: HTTPRequestHead
        let started: NIODeadline
        let upgrade: String?
        /// The head as routed (rewritten for the upstream), and parts that arrived before a connection did.
        var upstreamHead: HTTPRequestHead?
        var held: [HTTPClientRequestPart] = []
        var heldBytes = 0
        var requestEnded = false
        var requestBytes = 0
        var replay: ReplayBuffer?
        var endpoint: EndpointTarget?
        var responseHeaders: [(String, String)] = []
        var reused = false
        var attempts = 0
        var responseStarted: NIODeadline?
        var status = 0
        var responseBytes = 0
        var upstreamKeepAlive = true
        var switchingProtocols = false
        /// gRPC status fields moved from a trailers-only head to the trailers.
        var statusTrailers: HTTPHeaders?
    }

    private enum State {
        case idle
        case routing(Exchange)
        case forwarding(Exchange)
        /// The response is complete; the rest of the request body is read and dropped.
        case draining(Exchange)
        case closed
    }

    private var state = State.idle
    private var pipelined = CircularBuffer<HTTPServerRequestPart>()
    private var pipelinedHeads = 0
    private var pipelinedBytes = 0
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
        if pipelinedHeads >= limits.pipelinedRequests || pipelinedBytes > limits.heldBytes { return false }
        // Draining reads the active request to its end, and nothing after it.
        switch state {
        case .routing(let e): return e.heldBytes <= limits.heldBytes && !(quiescing && e.requestEnded)
        case .forwarding(let e), .draining(let e): return !(quiescing && e.requestEnded)
        case .idle: return !quiescing
        case .closed: return false
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
            guard pipelinedHeads < limits.pipelinedRequestsCap else {
                quiescing = true
                refusing = true
                return .none
            }
            pipelined.append(.head(head))
            pipelinedHeads += 1
            return .none
        case .closed:
            return .none
        }
        let exchange = Exchange(
            request: head, started: now, upgrade: head.version.major == 1 ? HopByHopHeaders.upgrade(head.headers) : nil)
        if head.headers[canonicalForm: "host"].count > 1 {
            // Two Hosts name two destinations; peers disagree on which wins (RFC 9112 §3.2: respond 400).
            state = .routing(exchange)
            return failed(ProxyError(.malformedRequest, "request has more than one Host header"), at: now)
        }
        var upstream = head
        HopByHopHeaders.strip(&upstream.headers)
        if let upgrade = exchange.upgrade { HopByHopHeaders.restoreUpgrade(upgrade, in: &upstream.headers) }
        // Every upstream hop is HTTP/1.1 or an HTTP/2 stream (whose codec ignores the version).
        upstream.version = .http1_1
        state = .routing(exchange)
        return .route(upstream)
    }

    mutating func requestBody(_ buffer: ByteBuffer) -> Action {
        switch state {
        case .routing(var e) where !e.requestEnded:
            e.requestBytes += buffer.readableBytes
            e.heldBytes += buffer.readableBytes
            e.held.append(.body(.byteBuffer(buffer)))
            state = .routing(e)
            return .none
        case .forwarding(var e) where !e.requestEnded:
            e.requestBytes += buffer.readableBytes
            e.replay?.append(.body(.byteBuffer(buffer)))
            state = .forwarding(e)
            return .send(.body(.byteBuffer(buffer)), flush: false)
        case .draining(let e) where !e.requestEnded:
            return .none
        case .idle, .closed:
            return .none
        case .routing, .forwarding, .draining:
            if !refusing {
                pipelined.append(.body(buffer))
                pipelinedBytes += buffer.readableBytes
            }
            return .none
        }
    }

    mutating func requestEnd(_ trailers: HTTPHeaders?) -> Action {
        switch state {
        case .routing(var e) where !e.requestEnded:
            e.requestEnded = true
            e.held.append(.end(trailers))
            state = .routing(e)
            return .none
        case .forwarding(var e) where !e.requestEnded:
            e.requestEnded = true
            e.replay?.append(.end(trailers))
            state = .forwarding(e)
            return .send(.end(trailers), flush: true)
        case .draining(let e) where !e.requestEnded:
            // The response went out before the request was done; now it is.
            let close = !e.request.keepsConnection || (quiescing && pipelined.isEmpty)
            state = close ? .closed : .idle
            return .exchangeDone(close: close)
        case .idle, .closed:
            return .none
        case .routing, .forwarding, .draining:
            if !refusing { pipelined.append(.end(trailers)) }
            return .none
        }
    }

    /// The next part a client pipelined, once the active exchange can take it (feed it back as an event).
    mutating func nextPipelinedPart() -> HTTPServerRequestPart? {
        switch state {
        case .idle: break
        case .routing(let e), .forwarding(let e), .draining(let e): if e.requestEnded { return nil }
        case .closed: return nil
        }
        guard let part = pipelined.popFirst() else { return nil }
        switch part {
        case .head: pipelinedHeads -= 1
        case .body(let b): pipelinedBytes -= b.readableBytes
        case .end: break
        }
        return part
    }

    /// The server is draining: finish the active exchange, then close.
    mutating func quiesce() -> Action {
        quiescing = true
        if case .idle = state, pipelined.isEmpty { return closeNow() }
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
        case .idle, .draining, .closed: return .none
        }
    }

    // MARK: upstream events

    mutating func upstreamHead(_ upstreamHead: HTTPResponseHead, at now: NIODeadline) -> Action {
        guard case .forwarding(var e) = state else { return .none }
        var headers = upstreamHead.headers
        HopByHopHeaders.strip(&headers)
        for (name, value) in e.responseHeaders { headers.replaceOrAdd(name: name, value: value) }
        e.statusTrailers = GRPCTrailersOnly.split(&headers)
        // Any response byte means the request reached the app: never replay it from here on.
        e.replay?.discard()
        if let upgrade = e.upgrade, upstreamHead.status == .switchingProtocols {
            // Accepted: Connection/Upgrade go back on; after the response's end the two connections become a tunnel.
            HopByHopHeaders.restoreUpgrade(upstreamHead.headers.first(name: "upgrade") ?? upgrade, in: &headers)
            e.switchingProtocols = true
        }
        // 1xx (100 Continue, 103 Early Hints) pass through; only the final head decides the rest.
        if upstreamHead.status.code >= 200 {
            e.upstreamKeepAlive = upstreamHead.version.major >= 2 || upstreamHead.isKeepAlive
            if !e.request.keepsConnection || (quiescing && e.request.version.major == 1) {
                // Draining: say so, so a pooling client does not send its next request into our close.
                headers.replaceOrAdd(name: "connection", value: "close")
            }
            e.responseStarted = now
            e.status = Int(upstreamHead.status.code)
        }
        state = .forwarding(e)
        return .writeHead(HTTPResponseHead(version: e.request.version, status: upstreamHead.status, headers: headers))
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
                Finish(upstream: .none, completion: completion(e, .upgraded, at: now), closeAfter: false))
        }
        // An upgrade's connection was its own (and may be half-switched): never reused.
        let reusable = e.requestEnded && e.upstreamKeepAlive && e.upgrade == nil
        let finish = Finish(
            upstream: .release(reusable: reusable), completion: completion(e, .responded(status: e.status), at: now),
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
                    completion: completion(e, .upstreamReset(status: e.status), at: now), closeAfter: true))
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
        let close = !e.request.keepsConnection || (quiescing && pipelined.isEmpty)
        let response = ProxyErrorResponse.make(
            error, requestHeaders: e.request.headers, version: e.request.version, close: close)
        let status = Int(ProxyErrorResponse.status(for: error.cause).code)
        var finish = Finish(
            upstream: upstream, completion: completion(e, .failed(error.cause, status: status), at: now),
            closeAfter: close)
        if close {
            state = .closed
            return .respond(response, finish)
        }
        var ended = e
        ended.held = []
        ended.heldBytes = 0
        finish = settle(ended, finish)
        return .respond(response, finish)
    }

    /// After the response's end: the next request, draining the rest of this one, or closing.
    private mutating func settle(_ e: Exchange, _ finish: Finish) -> Finish {
        var finish = finish
        if !e.requestEnded {
            state = .draining(e)
        } else if !e.request.keepsConnection || (quiescing && pipelined.isEmpty) {
            state = .closed
            finish.closeAfter = true
        } else {
            state = .idle
        }
        return finish
    }

    private mutating func closeNow() -> Action {
        state = .closed
        return .close
    }

    /// A client that broke the protocol mid-exchange: reset, giving up the upstream, with the one completion.
    private mutating func abort(at now: NIODeadline) -> Action { cutShort(at: now, close: true) ?? .close }

    /// The client is gone (or must go) while an exchange is routing or forwarding: the exchange completes as
    /// `downstreamClosed` and a half-used upstream is never reused. nil when no exchange was active.
    private mutating func cutShort(at now: NIODeadline, close: Bool) -> Action? {
        let previous = state
        state = .closed
        switch previous {
        case .routing(let e):
            return .reset(
                Finish(upstream: .none, completion: completion(e, .downstreamClosed, at: now), closeAfter: close))
        case .forwarding(let e):
            return .reset(
                Finish(
                    upstream: .release(reusable: false), completion: completion(e, .downstreamClosed, at: now),
                    closeAfter: close))
        case .idle, .draining, .closed:
            return nil
        }
    }

    private func completion(_ e: Exchange, _ outcome: ExchangeCompletion.Outcome, at now: NIODeadline)
        -> ExchangeCompletion
    {
        ExchangeCompletion(
            direction: direction, outcome: outcome, started: e.started, responseStarted: e.responseStarted, ended: now,
            requestBytes: e.requestBytes, responseBytes: e.responseBytes, endpoint: e.endpoint, attempts: e.attempts)
    }
}

extension HTTPRequestHead {
    /// Whether the downstream connection stays open after this exchange. An HTTP/2 stream (version 2) is
    /// one exchange by nature and its connection is not ours to close.
    var keepsConnection: Bool { version.major >= 2 || isKeepAlive }
}
