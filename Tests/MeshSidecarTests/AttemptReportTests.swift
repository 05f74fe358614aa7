import MeshCore
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// What the balancer hears: exactly one report per endpoint picked, and only the endpoint's own failures count.
@Suite struct AttemptReportTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let a = EndpointTarget(address: HostPort(host: "127.0.0.1", port: 1), identity: nil)

    func routedTry(_ m: inout ExchangeStateMachine, plan: ExchangePlan) -> Int {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x", headers: ["host": "orders"])
        guard case .route(let routed, _) = m.requestHead(head, at: t0) else { preconditionFailure("no route") }
        _ = m.requestEnd(nil)
        guard case .acquire(_, _, _, let step) = m.routed(routed, to: a, responseHeaders: [], plan: plan, at: t0) else {
            preconditionFailure("no acquire")
        }
        return step
    }

    @Test func aTryStillConnectingWhenTheDeadlinePassesIsGivenBack() {
        var m = ExchangeStateMachine(direction: .outbound)
        _ = routedTry(&m, plan: ExchangePlan(rules: nil, deadline: t0 + .milliseconds(100)))
        guard case .respond(_, let finish) = m.timerFired(at: t0 + .milliseconds(100)) else {
            Issue.record("no timeout")
            return
        }
        #expect(finish.attempt?.endpoint == a && finish.attempt?.result == .neutral, "the pick is settled")
    }

    @Test func aClientLeavingDuringTheConnectSettlesThePick() {
        var m = ExchangeStateMachine(direction: .outbound)
        _ = routedTry(&m, plan: .none)
        guard case .reset(let finish) = m.downstreamClosed(at: t0) else {
            Issue.record("no reset")
            return
        }
        #expect(finish.attempt?.result == .neutral)
    }

    @Test func aPeersDeadlineTimeoutDoesNotCountAgainstTheEndpoint() {
        var m = ExchangeStateMachine(direction: .outbound)
        let step = routedTry(&m, plan: .none)
        _ = m.attached(reused: false, at: t0, step: step)
        let timeout = HTTPResponseHead(
            version: .http1_1, status: .gatewayTimeout, headers: ["x-mesh-error": "timeout", "content-length": "0"])
        _ = m.upstreamHead(timeout, at: t0)
        guard case .writeEnd(_, let finish) = m.upstreamEnd(nil, at: t0) else { return }
        #expect(finish.attempt?.result == .neutral)

        var n = ExchangeStateMachine(direction: .outbound)
        let s = routedTry(&n, plan: .none)
        _ = n.attached(reused: false, at: t0, step: s)
        _ = n.upstreamHead(HTTPResponseHead(version: .http1_1, status: .badGateway, headers: [:]), at: t0)
        guard case .writeEnd(_, let failed) = n.upstreamEnd(nil, at: t0) else { return }
        #expect(failed.attempt?.result == .failed, "an app's own 502 does")
        #expect(n.upstreamEnd(nil, at: t0).isNone, "and only once")
    }
}
