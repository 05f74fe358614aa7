import MeshCore
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// The request path's state machine as a value: events in, actions out, no sockets and no clock.
@Suite struct ExchangeStateMachineTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let endpoint = EndpointTarget(address: HostPort(host: "127.0.0.1", port: 9), identity: nil)
    /// The inbound side's rules: one more try, only for a request that provably did not reach the app.
    let plan = ExchangePlan(rules: .inbound, deadline: nil)

    func head(_ method: HTTPMethod = .GET, _ uri: String = "/", headers: HTTPHeaders = ["host": "orders"])
        -> HTTPRequestHead
    {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }

    func ok(_ headers: HTTPHeaders = ["content-length": "0"]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
    }

    /// Drives one request to the point where it is forwarding on a fresh connection.
    func forward(_ m: inout ExchangeStateMachine, _ request: HTTPRequestHead, reused: Bool = false) {
        guard case .route(let upstream, _) = m.requestHead(request, at: t0) else {
            Issue.record("head did not route")
            return
        }
        #expect(upstream.version == .http1_1)
        guard case .acquire = m.routed(upstream, to: endpoint, responseHeaders: [], plan: plan, at: t0) else {
            Issue.record("route did not acquire")
            return
        }
        guard case .sendFirst = m.attached(reused: reused) else {
            Issue.record("attach did not send")
            return
        }
    }

    @Test func aRequestGoesOutAndEndsInExactlyOneCompletion() {
        var m = ExchangeStateMachine(direction: .outbound)
        guard
            case .route(let upstream, _) = m.requestHead(
                head(.POST, headers: ["host": "orders", "connection": "x-hop", "x-hop": "1"]), at: t0)
        else {
            Issue.record("no route")
            return
        }
        #expect(upstream.headers["x-hop"].isEmpty, "hop-by-hop headers are stripped before routing")
        #expect(m.requestBody(ByteBuffer(string: "held")).isNone, "body is held while routing")
        #expect(m.requestEnd(nil).isNone)
        _ = m.routed(upstream, to: endpoint, responseHeaders: [("x-mesh-upstream-identity", "spiffe://x")], at: t0)
        guard case .sendFirst(_, let parts) = m.attached(reused: false) else {
            Issue.record("nothing sent")
            return
        }
        #expect(parts.count == 2, "the head goes out with the held body and end")
        guard case .writeHead(let response) = m.upstreamHead(ok(), at: t0 + .milliseconds(3)) else {
            Issue.record("no head")
            return
        }
        #expect(response.headers.first(name: "x-mesh-upstream-identity") == "spiffe://x")
        _ = m.upstreamBody(ByteBuffer(string: "abc"))
        guard case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0 + .milliseconds(5)) else {
            Issue.record("no end")
            return
        }
        guard case .release(let reusable) = finish.upstream, let completion = finish.completion else {
            Issue.record("no release or completion")
            return
        }
        #expect(reusable)
        #expect(completion.outcome == .responded(status: 200))
        #expect(completion.requestBytes == 4 && completion.responseBytes == 3 && completion.attempts == 1)
        #expect(completion.duration == .milliseconds(5))
        #expect(completion.endpoint == endpoint)
        #expect(m.isIdle && !finish.closeAfter)
        #expect(m.upstreamEnd(nil, at: t0).isNone, "a second end completes nothing")
    }

    @Test func pipelinedRequestsWaitInOrderAndReadsStopOnlyPastTheBound() {
        var m = ExchangeStateMachine(direction: .outbound, limits: .init(pipelinedRequests: 2, heldBytes: 1024))
        forward(&m, head(.GET, "/1"))
        _ = m.requestEnd(nil)
        #expect(m.requestHead(head(.GET, "/2"), at: t0).isNone, "the second request waits")
        _ = m.requestEnd(nil)
        #expect(m.wantsRead, "one pipelined request is within the bound")
        _ = m.requestHead(head(.GET, "/3"), at: t0)
        _ = m.requestEnd(nil)
        #expect(!m.wantsRead, "two pipelined requests reach the bound: reads stop")
        #expect(m.nextPipelinedPart() == nil, "nothing is handed on while the first is active")
        _ = m.upstreamHead(ok(), at: t0)
        _ = m.upstreamEnd(nil, at: t0)
        guard case .head(let second) = m.nextPipelinedPart() else {
            Issue.record("the second request did not come next")
            return
        }
        #expect(second.uri == "/2")
        guard case .route = m.requestHead(second, at: t0) else {
            Issue.record("second not routed")
            return
        }
        guard case .end = m.nextPipelinedPart() else {
            Issue.record("second's end")
            return
        }
        _ = m.requestEnd(nil)
        #expect(m.nextPipelinedPart() == nil, "the third waits for the second's end to be handled")
    }

    @Test func aDuplicateHostIsRefusedWith400AtTheCaller() {
        var m = ExchangeStateMachine(direction: .outbound)
        var headers = HTTPHeaders([("host", "orders"), ("host", "payments")])
        headers.add(name: "x", value: "y")
        guard case .respond(let response, let finish) = m.requestHead(head(headers: headers), at: t0) else {
            Issue.record("not refused")
            return
        }
        #expect(response.head.status == .badRequest)
        #expect(response.head.headers.first(name: "x-mesh-error") == "malformed_request")
        #expect(finish.completion?.outcome == .failed(.malformedRequest, status: 400))
        #expect(m.requestEnd(nil).isExchangeDone, "the rest of the request is read and dropped")
    }

    @Test func aStaleReusedConnectionIsRetriedAtOnceThenFailsAsUpstreamReset() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head(.GET), reused: true)
        _ = m.requestEnd(nil)
        guard case .retry(let finish) = m.upstreamClosed(at: t0) else {
            Issue.record("not retried")
            return
        }
        #expect(finish.completion == nil, "a retry is not an exchange's end")
        #expect(
            finish.attempt?.result == .neutral && finish.attempt?.endpoint == endpoint,
            "a stale idle connection is the pool's race, not the endpoint's fault")
        #expect(m.nextDue == t0, "a stale pooled connection is no sign of trouble: no backoff")
        guard case .repick(let excluding, let step) = m.timerFired(at: t0) else {
            Issue.record("no repick")
            return
        }
        #expect(excluding.isEmpty, "and the retry may go to the same endpoint, on a new connection")
        guard case .acquire(let target, _, let fresh, let next) = m.retryTo(endpoint, step: step), fresh else {
            Issue.record("no acquire")
            return
        }
        #expect(target == endpoint)
        guard case .sendFirst(let replayed, let parts) = m.attached(reused: false, at: t0, step: next) else {
            Issue.record("replay not sent")
            return
        }
        #expect(replayed.method == .GET && parts.count == 1, "head and end again")
        guard case .respond(let response, let last) = m.upstreamClosed(at: t0) else {
            Issue.record("a fresh connection's failure is not replayed")
            return
        }
        #expect(response.head.headers.first(name: "x-mesh-error") == "upstream_reset")
        #expect(last.completion?.attempts == 2 && last.completion?.retries == 1)
    }

    @Test func aPostOnAStaleConnectionIsNeverReplayed() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head(.POST), reused: true)
        _ = m.requestEnd(nil)
        guard case .respond = m.upstreamClosed(at: t0) else {
            Issue.record("POST replayed")
            return
        }
    }

    @Test func anUpstreamThatDiesMidResponseResetsTheClient() {
        var m = ExchangeStateMachine(direction: .inbound)
        forward(&m, head())
        _ = m.requestEnd(nil)
        _ = m.upstreamHead(ok(["content-length": "10"]), at: t0)
        guard case .reset(let finish) = m.upstreamClosed(at: t0) else {
            Issue.record("not reset")
            return
        }
        #expect(finish.completion?.outcome == .upstreamReset(status: 200))
        #expect(!m.wantsRead)
    }

    @Test func aClientThatLeavesEndsTheExchangeAndFreesNoReusableConnection() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head())
        guard case .reset(let finish) = m.downstreamClosed(at: t0) else {
            Issue.record("no completion for a client that left")
            return
        }
        guard case .release(reusable: false) = finish.upstream else {
            Issue.record("the half-used upstream must not be pooled")
            return
        }
        #expect(finish.completion?.outcome == .downstreamClosed)
        #expect(m.attached(reused: true).isReleaseUnused, "a connection arriving late goes back unused")
    }

    @Test func aHeadInsideARequestBodyResetsTheExchangeWithItsOneCompletion() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head(.POST))
        guard case .reset(let finish) = m.requestHead(head(.GET, "/smuggled"), at: t0) else {
            Issue.record("not reset")
            return
        }
        #expect(finish.closeAfter && finish.completion?.outcome == .downstreamClosed)
        guard case .release(reusable: false) = finish.upstream else {
            Issue.record("a half-sent upstream must not be pooled")
            return
        }
        #expect(m.downstreamClosed(at: t0).isNone, "the close that follows completes nothing more")
    }

    @Test func oneXXPassesAndOnlyTheFinalHeadCounts() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head(.POST))
        guard case .writeHead(let cont) = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .continue), at: t0)
        else {
            Issue.record("100 not passed")
            return
        }
        #expect(cont.status == .continue)
        // The upstream dies after a 100: the client can still get a proper 502.
        guard case .respond = m.upstreamClosed(at: t0) else {
            Issue.record("a 1xx is not a started response")
            return
        }
    }

    @Test func anEarlyResponseDrainsTheRestOfTheRequestAndTheUpstreamIsNotReused() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head(.POST))
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .payloadTooLarge), at: t0)
        guard case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0), case .release(let reusable) = finish.upstream
        else {
            Issue.record("no end")
            return
        }
        #expect(!reusable, "the request body was not all sent")
        #expect(m.requestBody(ByteBuffer(string: "late")).isNone)
        #expect(m.requestEnd(nil).isExchangeDone)
        #expect(m.isIdle)
    }

    @Test func connectionCloseAndHTTP10CloseAfterTheResponse() {
        var m = ExchangeStateMachine(direction: .inbound)
        forward(&m, head(headers: ["host": "a", "connection": "close"]))
        _ = m.requestEnd(nil)
        guard case .writeHead(let response) = m.upstreamHead(ok(), at: t0) else {
            Issue.record("no head")
            return
        }
        #expect(response.headers.first(name: "connection") == "close")
        guard case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0) else {
            Issue.record("no end")
            return
        }
        #expect(finish.closeAfter)
    }

    @Test func aGRPCTrailersOnlyStatusMovesToTheTrailers() {
        var m = ExchangeStateMachine(direction: .outbound)
        forward(&m, head(.POST, headers: ["host": "a", "content-type": "application/grpc"]))
        _ = m.requestEnd(nil)
        guard
            case .writeHead(let h) = m.upstreamHead(
                ok(["content-type": "application/grpc", "grpc-status": "5", "grpc-message": "nope"]), at: t0)
        else {
            Issue.record("no head")
            return
        }
        #expect(!h.headers.contains(name: "grpc-status"))
        guard case .writeEnd(let trailers, _) = m.upstreamEnd(nil, at: t0) else {
            Issue.record("no end")
            return
        }
        #expect(trailers?.first(name: "grpc-status") == "5")
    }

    @Test func drainingClosesAnIdleConnectionAndABusyOneAfterItsExchange() {
        var idle = ExchangeStateMachine(direction: .inbound)
        #expect(idle.quiesce().isClose)
        var busy = ExchangeStateMachine(direction: .inbound)
        forward(&busy, head())
        _ = busy.requestEnd(nil)
        #expect(busy.quiesce().isNone)
        _ = busy.upstreamHead(ok(), at: t0)
        guard case .writeEnd(_, let finish) = busy.upstreamEnd(nil, at: t0) else {
            Issue.record("no end")
            return
        }
        #expect(finish.closeAfter)
    }

    @Test func drainingSaysConnectionCloseAndReadsNothingAfterTheActiveRequest() {
        var m = ExchangeStateMachine(direction: .inbound)
        forward(&m, head(.POST))
        #expect(m.quiesce().isNone)
        #expect(m.wantsRead, "the active request is still read to its end")
        _ = m.requestEnd(nil)
        #expect(!m.wantsRead, "nothing after it")
        #expect(m.requestHead(head(.GET, "/late"), at: t0).isNone, "a request after the drain began is not taken")
        guard case .writeHead(let response) = m.upstreamHead(ok(), at: t0) else {
            Issue.record("no head")
            return
        }
        #expect(response.headers.first(name: "connection") == "close", "a pooling client must not reuse it")
        guard case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0) else {
            Issue.record("no end")
            return
        }
        #expect(finish.closeAfter)
        #expect(m.nextPipelinedPart() == nil)
    }

    @Test func aClientPipeliningPastTheCapGetsWhatItQueuedAnsweredThenTheConnectionCloses() {
        var m = ExchangeStateMachine(
            direction: .outbound, limits: .init(pipelinedRequests: 2, heldBytes: 1024, pipelinedRequestsCap: 3))
        forward(&m, head(.GET, "/0"))
        _ = m.requestEnd(nil)
        for i in 1...10 {
            _ = m.requestHead(head(.GET, "/\(i)"), at: t0)
            _ = m.requestEnd(nil)
        }
        _ = m.upstreamHead(ok(), at: t0)
        _ = m.upstreamEnd(nil, at: t0)
        var served: [String] = []
        while case .head(let next)? = m.nextPipelinedPart() {
            served.append(next.uri)
            guard case .route(let upstream, _) = m.requestHead(next, at: t0) else { break }
            _ = m.routed(upstream, to: endpoint, responseHeaders: [], at: t0)
            _ = m.attached(reused: false)
            guard case .end(let trailers)? = m.nextPipelinedPart() else { break }
            _ = m.requestEnd(trailers)
            _ = m.upstreamHead(ok(), at: t0)
            if case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0), finish.closeAfter { break }
        }
        #expect(served == ["/1", "/2", "/3"], "the queued ones, in order, then no more")
        #expect(!m.wantsRead && !m.isIdle, "closed")
    }

    @Test func aWebSocketUpgradeBecomesATunnel() {
        var m = ExchangeStateMachine(direction: .outbound)
        guard
            case .route(let upstream, _) = m.requestHead(
                head(headers: ["host": "a", "connection": "Upgrade", "upgrade": "websocket"]), at: t0)
        else {
            Issue.record("no route")
            return
        }
        #expect(upstream.headers.first(name: "upgrade") == "websocket")
        guard case .acquire(_, let upgrade, _, _) = m.routed(upstream, to: endpoint, responseHeaders: [], at: t0) else {
            Issue.record("no acquire")
            return
        }
        #expect(upgrade, "an upgrade gets a connection of its own")
        _ = m.attached(reused: false)
        _ = m.requestEnd(nil)
        _ = m.upstreamHead(
            HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["upgrade": "websocket"]), at: t0)
        guard case .splice(let finish) = m.upstreamEnd(nil, at: t0) else {
            Issue.record("not spliced")
            return
        }
        #expect(finish.completion?.outcome == .upgraded)
    }
}

extension ExchangeStateMachine.Action {
    var isNone: Bool { if case .none = self { true } else { false } }
    var isClose: Bool { if case .close = self { true } else { false } }
    var isReleaseUnused: Bool { if case .releaseUnused = self { true } else { false } }
    var isExchangeDone: Bool { if case .exchangeDone = self { true } else { false } }
}
