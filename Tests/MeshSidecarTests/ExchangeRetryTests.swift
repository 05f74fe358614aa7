import MeshCore
import MeshPolicy
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// Retries and timeouts in the exchange's state machine, driven as a value with the time passed in.
@Suite struct ExchangeRetryTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let a = EndpointTarget(address: HostPort(host: "127.0.0.1", port: 1), identity: nil)
    let b = EndpointTarget(address: HostPort(host: "127.0.0.1", port: 2), identity: nil)

    func rules(_ attempts: Int = 2, retryOn: [String] = ["503"], perTry: String? = nil, buffer: Int = 65536)
        -> RetryRules
    {
        try! RetryRules(
            TrafficPolicy.Retries(attempts: attempts, perTryTimeout: perTry, retryOn: retryOn, bufferBytes: buffer))
    }

    func status(_ code: Int, _ headers: HTTPHeaders = ["content-length": "0"]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: code), headers: headers)
    }

    /// A request routed to `a` with `plan`, its body sent whole; returns the step to answer `acquire` with.
    func start(
        _ m: inout ExchangeStateMachine, _ method: HTTPMethod = .GET, plan: ExchangePlan, body: String? = nil,
        headers: HTTPHeaders = ["host": "orders"]
    ) -> Int {
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: "/x", headers: headers)
        guard case .route(let routed, _) = m.requestHead(head, at: t0) else { preconditionFailure("no route") }
        if let body { _ = m.requestBody(ByteBuffer(string: body)) }
        _ = m.requestEnd(nil)
        guard case .acquire(_, _, _, let step) = m.routed(routed, to: a, responseHeaders: [], plan: plan, at: t0) else {
            preconditionFailure("no acquire")
        }
        return step
    }

    /// Waits out a retry's backoff and sends the retry to `b`; returns what it sent.
    func retryToB(_ m: inout ExchangeStateMachine) -> (HTTPRequestHead, [HTTPClientRequestPart])? {
        guard let due = m.nextDue, case .repick(let excluding, let step) = m.timerFired(at: due) else { return nil }
        #expect(excluding.last == a, "a retry prefers another endpoint than those that failed")
        guard case .acquire(let target, _, _, let next) = m.retryTo(b, step: step), target == b,
            case .sendFirst(let head, let parts) = m.attached(reused: false, at: due, step: next)
        else { return nil }
        return (head, parts)
    }

    @Test func aGetAnswered503IsRetriedElsewhereWithItsBody() {
        var m = ExchangeStateMachine(direction: .outbound, seed: 1)
        let step = start(&m, .PUT, plan: ExchangePlan(rules: rules(), deadline: nil), body: "hello")
        _ = m.attached(reused: false, at: t0, step: step)
        guard case .retry(let finish) = m.upstreamHead(status(503), at: t0 + .milliseconds(2)) else {
            Issue.record("503 not retried")
            return
        }
        #expect(finish.completion == nil && finish.attempt?.result == .failed)
        guard case .release(reusable: false) = finish.upstream else {
            Issue.record("the failed try's connection is kept")
            return
        }
        #expect(m.nextDue! <= t0 + .milliseconds(2) + .milliseconds(25), "within the first backoff (25 ms)")
        guard let (_, parts) = retryToB(&m) else {
            Issue.record("no retry sent")
            return
        }
        #expect(parts.count == 2, "the kept body and end go again")
        guard case .writeHead(let head) = m.upstreamHead(status(200), at: t0 + .milliseconds(40)) else {
            Issue.record("the retry's answer is not forwarded")
            return
        }
        #expect(head.status == .ok)
        guard case .writeEnd(_, let end) = m.upstreamEnd(nil, at: t0 + .milliseconds(41)) else {
            Issue.record("no end")
            return
        }
        #expect(end.completion?.attempts == 2 && end.completion?.retries == 1 && end.completion?.endpoint == b)
    }

    @Test func aPostAnswered503IsForwardedAsIs() {
        var m = ExchangeStateMachine(direction: .outbound)
        let step = start(&m, .POST, plan: ExchangePlan(rules: rules(), deadline: nil), body: "order")
        _ = m.attached(reused: false, at: t0, step: step)
        guard case .writeHead(let head) = m.upstreamHead(status(503), at: t0) else {
            Issue.record("POST retried")
            return
        }
        #expect(head.status == .serviceUnavailable)
    }

    @Test func aSidecarThatSaysItsAppNeverSawThePostLetsItGoElsewhere() {
        var m = ExchangeStateMachine(direction: .outbound, seed: 2)
        let step = start(&m, .POST, plan: ExchangePlan(rules: rules(retryOn: []), deadline: nil), body: "order")
        _ = m.attached(reused: false, at: t0, step: step)
        let refused = status(502, ["x-mesh-error": "connect_failed", "x-mesh-unprocessed": "true"])
        guard case .retry = m.upstreamHead(refused, at: t0) else {
            Issue.record("an unprocessed request was not retried")
            return
        }
        #expect(retryToB(&m) != nil)
    }

    @Test func theBudgetDecidesAndSaysSo() {
        // A status the budget will not retry goes to the client as it is, noted in the completion.
        var m = ExchangeStateMachine(direction: .outbound)
        let step = start(&m, plan: ExchangePlan(rules: rules(), deadline: nil))
        _ = m.attached(reused: false, at: t0, step: step)
        guard case .writeHead(let head) = m.upstreamHead(status(503), at: t0, withdraw: { false }) else {
            Issue.record("not forwarded")
            return
        }
        #expect(head.status == .serviceUnavailable)
        guard case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0) else { return }
        #expect(finish.completion?.budgetExhausted == true && finish.completion?.retries == 0)

        // A connect failure the budget will not retry is answered as retry_budget_exhausted.
        var n = ExchangeStateMachine(direction: .outbound)
        let s = start(&n, plan: ExchangePlan(rules: rules(), deadline: nil))
        guard
            case .respond(let response, _) = n.failed(
                ProxyError(.connectFailed, "refused"), at: t0, step: s, withdraw: { false })
        else {
            Issue.record("not answered")
            return
        }
        #expect(response.head.headers.first(name: "x-mesh-error") == "retry_budget_exhausted")
        #expect(response.head.status == .serviceUnavailable)
    }

    @Test func connectFailuresAreRetriedUntilTheAttemptsRunOut() {
        var m = ExchangeStateMachine(direction: .outbound, seed: 3)
        var step = start(&m, .POST, plan: ExchangePlan(rules: rules(1), deadline: nil), body: "x")
        guard case .retry = m.failed(ProxyError(.connectFailed, "refused"), at: t0, step: step) else {
            Issue.record("connect failure not retried for a POST")
            return
        }
        guard let due = m.nextDue, case .repick(_, let s) = m.timerFired(at: due),
            case .acquire(_, _, _, let next) = m.retryTo(b, step: s)
        else {
            Issue.record("no second try")
            return
        }
        step = next
        #expect(m.attached(reused: false, at: due, step: step - 1).isReleaseUnused, "an old step's lease goes back")
        guard
            case .respond(let response, let finish) = m.failed(
                ProxyError(.connectFailed, "refused"), at: due, step: step)
        else {
            Issue.record("not answered after the last try")
            return
        }
        #expect(response.head.headers.first(name: "x-mesh-error") == "retries_exhausted")
        #expect(finish.completion?.attempts == 2 && finish.completion?.retries == 1)
    }

    /// Through another sidecar a gRPC status arrives in trailers: the head waits, so a message-less UNAVAILABLE can
    /// still be retried; a message releases the head at once.
    @Test func aGrpcStatusInTrailersIsRetriedWhenNoMessageWentOut() {
        let grpc: HTTPHeaders = ["host": "orders", "content-type": "application/grpc"]
        let ok = status(200, ["content-type": "application/grpc"])
        var m = ExchangeStateMachine(direction: .outbound, seed: 5)
        let step = start(
            &m, .POST, plan: ExchangePlan(rules: rules(retryOn: ["unavailable"]), deadline: nil), headers: grpc)
        _ = m.attached(reused: false, at: t0, step: step)
        #expect(m.upstreamHead(ok, at: t0).isNone, "the head waits")
        guard case .retry(let finish) = m.upstreamEnd(["grpc-status": "14"], at: t0) else {
            Issue.record("UNAVAILABLE in trailers not retried")
            return
        }
        #expect(finish.attempt?.result == .failed)
        guard retryToB(&m) != nil else {
            Issue.record("no second try")
            return
        }
        #expect(m.upstreamHead(ok, at: t0).isNone)
        guard case .writeHeadAndBody(let head, _) = m.upstreamBody(ByteBuffer(string: "msg")) else {
            Issue.record("a message does not release the head")
            return
        }
        #expect(head.status == .ok)
        guard case .writeEnd(let trailers, let end) = m.upstreamEnd(["grpc-status": "0"], at: t0) else { return }
        #expect(trailers?.first(name: "grpc-status") == "0" && end.completion?.retries == 1)

        var n = ExchangeStateMachine(direction: .outbound)
        let s = start(
            &n, .POST, plan: ExchangePlan(rules: rules(retryOn: ["unavailable"]), deadline: nil), headers: grpc)
        _ = n.attached(reused: false, at: t0, step: s)
        _ = n.upstreamHead(ok, at: t0)
        guard case .writeHeadAndEnd(_, let notFound, _) = n.upstreamEnd(["grpc-status": "5"], at: t0) else {
            Issue.record("a code the rules do not list is not passed on")
            return
        }
        #expect(notFound?.first(name: "grpc-status") == "5")
    }

    @Test func aBodyOverTheBufferIsNeverSentTwice() {
        var m = ExchangeStateMachine(direction: .outbound)
        let step = start(&m, .PUT, plan: ExchangePlan(rules: rules(buffer: 4), deadline: nil), body: "too long")
        _ = m.attached(reused: false, at: t0, step: step)
        guard case .writeHead = m.upstreamHead(status(503), at: t0) else {
            Issue.record("a request whose body was not kept was retried")
            return
        }
    }

    @Test func aTryThatHangsIsCutAtItsPerTryTimeoutAndRetried() {
        var m = ExchangeStateMachine(direction: .outbound, seed: 4)
        let step = start(&m, plan: ExchangePlan(rules: rules(1, retryOn: [], perTry: "100ms"), deadline: nil))
        _ = m.attached(reused: false, at: t0, step: step)
        #expect(m.nextDue == t0 + .milliseconds(100))
        guard case .retry(let finish) = m.timerFired(at: t0 + .milliseconds(100)) else {
            Issue.record("per-try timeout not retried")
            return
        }
        #expect(finish.attempt?.result == .failed, "a hung try counts against its endpoint")
        guard retryToB(&m) != nil, let due = m.nextDue else {
            Issue.record("no retry")
            return
        }
        guard case .respond(let response, let last) = m.timerFired(at: due) else {
            Issue.record("the second hang is not answered")
            return
        }
        #expect(response.head.headers.first(name: "x-mesh-error") == "retries_exhausted")
        #expect(last.completion?.timeout == .perTry)
    }

    @Test func theRequestTimeoutEndsEverythingWith504OrAReset() {
        var m = ExchangeStateMachine(direction: .outbound)
        let plan = ExchangePlan(rules: rules(), deadline: t0 + .seconds(1))
        let step = start(&m, plan: plan)
        guard case .sendFirst(let head, _) = m.attached(reused: false, at: t0 + .milliseconds(200), step: step) else {
            return
        }
        #expect(head.headers.first(name: "x-mesh-timeout-ms") == "800", "the next hop learns what is left")
        guard case .respond(let response, let finish) = m.timerFired(at: t0 + .seconds(1)) else {
            Issue.record("no timeout")
            return
        }
        #expect(
            response.head.status == .gatewayTimeout && response.head.headers.first(name: "x-mesh-error") == "timeout")
        #expect(finish.completion?.timeout == .request && finish.attempt?.result == .neutral)

        var n = ExchangeStateMachine(direction: .outbound)
        let s = start(&n, plan: plan)
        _ = n.attached(reused: false, at: t0, step: s)
        _ = n.upstreamHead(status(200, ["content-length": "100"]), at: t0)
        guard case .reset(let cut) = n.timerFired(at: t0 + .seconds(1)) else {
            Issue.record("a started response is not cut")
            return
        }
        #expect(cut.completion?.outcome == .cutShort(status: 200) && cut.completion?.timeout == .request)
    }

    @Test func noRetryStartsThatCouldNotFinishBeforeTheDeadline() {
        var m = ExchangeStateMachine(direction: .outbound)
        let step = start(&m, plan: ExchangePlan(rules: rules(), deadline: t0 + .milliseconds(1)))
        _ = m.attached(reused: false, at: t0, step: step)
        guard case .writeHead = m.upstreamHead(status(503), at: t0 + .microseconds(999), withdraw: { true }) else {
            Issue.record("retried past the deadline")
            return
        }
    }

    @Test func anIdleExchangeIsAnswered504Idle() {
        var m = ExchangeStateMachine(direction: .inbound)
        let step = start(&m, plan: ExchangePlan(rules: .inbound, deadline: nil))
        _ = m.attached(reused: false, at: t0, step: step)
        guard case .respond(let response, let finish) = m.idleTimedOut(at: t0 + .seconds(300)) else {
            Issue.record("idle not answered")
            return
        }
        #expect(response.head.status == .gatewayTimeout && finish.completion?.timeout == .idle)
    }
}
