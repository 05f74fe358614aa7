import NIOCore
import NIOHTTP1

extension ExchangeStateMachine {
    /// One request and its response as the machine tracks them: what the client asked, what went upstream, and
    /// what came back. The header rewriting of each direction of the exchange lives here, as pure functions.
    struct Exchange {
        let request: HTTPRequestHead
        let started: NIODeadline
        /// The protocol an HTTP/1.1 request asks to upgrade to (WebSocket), if any.
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
        /// Tries (each an endpoint picked for the request), and how many of them were retries.
        var attempts = 0
        var retries = 0
        /// The route's plan: retry rules, deadline. Set when routed.
        var plan = ExchangePlan.none
        var isGRPC: Bool
        /// When the current try's request went out, and its own deadline (the per-try timeout).
        var attemptSent: NIODeadline?
        var perTryDeadline: NIODeadline?
        /// A retry waits until then; the endpoint the failed try went to (a retry prefers another).
        var retryAt: NIODeadline?
        var tried: [EndpointTarget] = []
        /// A try wrote the request to a connection: from then on it may have reached the app.
        var wrote = false
        /// An endpoint was picked for the current try and the balancer has not yet heard how it ended.
        var tryOpen = false
        /// The last failure was a stale pooled connection: the retry takes a new connection.
        var wantsFreshConnection = false
        /// A gRPC answer's head, held until its first message or its end (see `holdsForGRPCStatus`).
        var heldHead: HTTPResponseHead?

        /// Whether to hold a gRPC answer's head back: the rules retry some gRPC code, a retry is still possible,
        /// and the head is a plain 200 without a status (so the status will come in trailers).
        func holdsForGRPCStatus(_ head: HTTPResponseHead) -> Bool {
            guard isGRPC, let rules = plan.rules, !rules.grpcCodes.isEmpty, retries < rules.attempts,
                head.status == .ok, replay?.replayable != nil
            else { return false }
            return !head.headers.contains(name: "grpc-status")
        }

        /// How the final response counts for the endpoint: a 5xx against it (see `blames`), a peer's deadline
        /// timeout not at all.
        var verdict = AttemptReport.Result.succeeded
        /// The retry budget refused a retry this exchange wanted.
        var budgetExhausted = false
        /// Why the last failed try was not retried.
        var giveUp: GiveUp?
        var responseStarted: NIODeadline?
        var status = 0
        var responseBytes = 0
        var upstreamKeepAlive = true
        var switchingProtocols = false
        /// gRPC status fields moved from a trailers-only head to the trailers.
        var statusTrailers: HTTPHeaders?

        init(request: HTTPRequestHead, started: NIODeadline) {
            self.request = request
            self.started = started
            upgrade = request.version.major == 1 ? HopByHopHeaders.upgrade(request.headers) : nil
            isGRPC = request.headers.first(name: "content-type")?.hasPrefix("application/grpc") == true
        }

        /// The head for the next try: as routed, with the time left written in if there is a deadline.
        func headForTry(at now: NIODeadline) -> HTTPRequestHead {
            guard var head = upstreamHead else { preconditionFailure("a try before the route") }
            if let deadline = plan.deadline, plan.propagatesDeadline {
                DeadlineHeaders.write(deadline: deadline, at: now, isGRPC: isGRPC, into: &head.headers)
            }
            return head
        }

        /// The earliest time something is due for this exchange: its deadline, the try's, or the retry's.
        var nextDue: NIODeadline? {
            var due = plan.deadline
            for other in [responseStarted == nil ? perTryDeadline : nil, retryAt] {
                if let other { due = due.map { min($0, other) } ?? other }
            }
            return due
        }

        /// How the current try's response head counts as a failure worth a retry, if it does. Cheap for the
        /// common answers: a 2xx/3xx that is not gRPC is decided by its status alone.
        func failure(in head: HTTPResponseHead, direction: Direction) -> AttemptFailure? {
            let status = Int(head.status.code)
            if status >= 400 {
                if direction == .outbound, head.headers.contains(name: ProxyErrorResponse.unprocessedHeader) {
                    return .unsent
                }
                // The peer's sidecar lost its app mid-request: to the policy that is a `reset`, as if it were ours.
                if status == 502, plan.rules?.onReset == true,
                    head.headers.first(name: "x-mesh-error") == ProxyError.Cause.upstreamReset.rawValue
                {
                    return .reset(pooled: false)
                }
                return .status(status)
            }
            if isGRPC, let text = head.headers.first(name: "grpc-status"), let code = Int(text), code != 0 {
                return .grpc(code)
            }
            return nil
        }

        /// Ends the current try, if one is open (an endpoint was picked for it and the balancer has not heard how
        /// it ended): its report, exactly once per pick.
        mutating func endTry(_ result: AttemptReport.Result, at now: NIODeadline) -> AttemptReport? {
            guard tryOpen, let endpoint else { return nil }
            tryOpen = false
            let ttfb = responseStarted.flatMap { started in attemptSent.map { started - $0 } }
            return AttemptReport(endpoint: endpoint, result: result, firstByte: ttfb, at: now)
        }

        /// How a final response counts for the endpoint, retried or not: a 5xx is its failure, except a peer
        /// sidecar's `timeout` (the caller's own deadline running out there), which counts for nothing; a gRPC
        /// UNAVAILABLE in a trailers-only answer is a failure; anything else (4xx included) a success.
        func verdict(for head: HTTPResponseHead) -> AttemptReport.Result {
            if head.status.code >= 500 {
                let peerTimeout =
                    head.status.code == 504
                    && head.headers.first(name: "x-mesh-error") == ProxyError.Cause.timeout.rawValue
                return peerTimeout ? .neutral : .failed
            }
            if isGRPC, head.headers.first(name: "grpc-status") == "14" { return .failed }
            return .succeeded
        }

        /// The request head to route: hop-by-hop headers stripped (an upgrade's two put back), HTTP/1.1 — every
        /// upstream hop is HTTP/1.1 or an HTTP/2 stream, whose codec ignores the version.
        var headToRoute: HTTPRequestHead {
            var head = request
            HopByHopHeaders.strip(&head.headers)
            if let upgrade { HopByHopHeaders.restoreUpgrade(upgrade, in: &head.headers) }
            head.version = .http1_1
            return head
        }

        /// The client's copy of an upstream response head (1xx or final), noting what the final one decides.
        /// `closing`: the connection closes after this exchange, which an HTTP/1 response says.
        mutating func responseHead(for upstream: HTTPResponseHead, at now: NIODeadline, closing: Bool)
            -> HTTPResponseHead
        {
            var headers = upstream.headers
            HopByHopHeaders.strip(&headers)
            // Only the sidecar that answered for its app says it never reached it; never the app, never onward.
            headers.remove(name: ProxyErrorResponse.unprocessedHeader)
            for (name, value) in responseHeaders { headers.replaceOrAdd(name: name, value: value) }
            statusTrailers = GRPCTrailersOnly.split(&headers)
            // Any response byte means the request reached the app: never replay it from here on.
            replay?.discard()
            if let upgrade, upstream.status == .switchingProtocols {
                // Accepted: Connection/Upgrade go back on; after the response's end the connections become a tunnel.
                HopByHopHeaders.restoreUpgrade(upstream.headers.first(name: "upgrade") ?? upgrade, in: &headers)
                switchingProtocols = true
            }
            // 1xx (100 Continue, 103 Early Hints) pass through; only the final head decides the rest.
            if upstream.status.code >= 200 {
                upstreamKeepAlive = upstream.version.major >= 2 || upstream.isKeepAlive
                if !request.keepsConnection || (closing && request.version.major == 1) {
                    // Say so, so a pooling client does not send its next request into our close.
                    headers.replaceOrAdd(name: "connection", value: "close")
                }
                responseStarted = now
                status = Int(upstream.status.code)
                verdict = verdict(for: upstream)
            }
            return HTTPResponseHead(version: request.version, status: upstream.status, headers: headers)
        }

        /// A body part or the end of the request: held while there is no connection yet, else kept for a replay.
        mutating func received(_ part: HTTPClientRequestPart, holding: Bool) {
            switch part {
            case .body(.byteBuffer(let buffer)):
                requestBytes += buffer.readableBytes
                if holding { heldBytes += buffer.readableBytes }
            case .end: requestEnded = true
            case .head, .body(.fileRegion): break
            }
            if holding { held.append(part) } else { replay?.append(part) }
        }

        /// Whether the upstream connection can carry another request after this response: the request went out
        /// whole, the upstream keeps it alive, and it was not an upgrade's connection of its own.
        var upstreamReusable: Bool { requestEnded && upstreamKeepAlive && upgrade == nil }

        func completion(_ outcome: ExchangeCompletion.Outcome, _ direction: Direction, at now: NIODeadline)
            -> ExchangeCompletion
        {
            ExchangeCompletion(
                direction: direction, outcome: outcome, started: started, responseStarted: responseStarted, ended: now,
                requestBytes: requestBytes, responseBytes: responseBytes, endpoint: endpoint, attempts: attempts,
                retries: retries, budgetExhausted: budgetExhausted)
        }
    }
}

extension HTTPRequestHead {
    /// Whether the downstream connection stays open after this exchange. An HTTP/2 stream (version 2) is
    /// one exchange by nature and its connection is not ours to close.
    var keepsConnection: Bool { version.major >= 2 || isKeepAlive }
}
