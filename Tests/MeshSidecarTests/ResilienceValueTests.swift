import MeshControlClient
import MeshCore
import MeshPolicy
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// The resilience layers' state as values, with the time passed in: the retry budget, backoff, peak-EWMA,
/// outlier ejection, the retry rules and the deadline headers.
@Suite struct ResilienceValueTests {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func theBudgetAllowsAShareOfRequestsPlusAFloorOverTenSeconds() {
        var budget = RetryBudget(percent: 20, minPerSecond: 1)
        for _ in 0..<100 { budget.deposit(at: t0) }
        // 20 % of 100 requests plus 1/s over the 10 s window: 30 retries, not one more.
        var granted = 0
        while budget.withdraw(at: t0) { granted += 1 }
        #expect(granted == 30)
        // Ten seconds later the window has moved on: only the floor is left.
        var later = 0
        while budget.withdraw(at: t0 + .seconds(11)) { later += 1 }
        #expect(later == 10)
    }

    @Test func theBudgetAgesOutSecondBySecond() {
        var budget = RetryBudget(percent: 10, minPerSecond: 0)
        for _ in 0..<100 { budget.deposit(at: t0) }
        for _ in 0..<100 { budget.deposit(at: t0 + .seconds(5)) }
        var granted = 0
        while granted < 30, budget.withdraw(at: t0 + .seconds(5)) { granted += 1 }
        #expect(granted == 20)
        // At 10.5 s the first second's requests (and no retries) have left the window: 10 % of 100 is 10, all used.
        let at10 = budget.withdraw(at: t0 + .milliseconds(10_500))
        #expect(!at10)
        // At 15.5 s the requests of second 5 are gone too, and so are the retries taken then.
        let at15 = budget.withdraw(at: t0 + .milliseconds(15_500))
        #expect(!at15, "nothing deposited, no floor")
    }

    @Test func backoffIsExponentialWithFullJitterAndCapped() {
        let base = TimeAmount.milliseconds(25)
        let max = TimeAmount.milliseconds(250)
        #expect(Backoff.delay(retry: 1, base: base, max: max, jitter: 1) == .milliseconds(25))
        #expect(Backoff.delay(retry: 2, base: base, max: max, jitter: 1) == .milliseconds(50))
        #expect(Backoff.delay(retry: 3, base: base, max: max, jitter: 0.5) == .milliseconds(50))
        #expect(Backoff.delay(retry: 9, base: base, max: max, jitter: 1) == .milliseconds(250))
        #expect(Backoff.delay(retry: 60, base: base, max: max, jitter: 1) == .milliseconds(250), "no overflow")
        #expect(Backoff.delay(retry: 1, base: base, max: max, jitter: 0) == .zero)
    }

    @Test func peakEWMATakesPeaksAtOnceAndDecaysTowardsFasterSamples() {
        var ewma = PeakEWMA(at: t0)
        #expect(ewma.estimateNanos == Double(PeakEWMA.initial.nanoseconds))
        ewma.observe(.milliseconds(100), at: t0)
        #expect(ewma.estimateNanos == 100_000_000, "a slower sample is the new estimate at once")
        ewma.observe(.milliseconds(10), at: t0 + .seconds(10))
        // One decay period later a faster sample pulls it most of the way: 100·e⁻¹ + 10·(1 − e⁻¹) ≈ 43.1 ms.
        #expect(abs(ewma.estimateNanos - 43_109_000) < 100_000)
        let idle = ewma.cost(inFlight: 0, at: t0 + .seconds(40))

        #expect(idle < 2_200_000, "30 s without samples leave e⁻³ of it: a slow endpoint gets tried again")
        let loaded = ewma.cost(inFlight: 3, at: t0 + .seconds(40))
        #expect(loaded > 3 * idle, "in-flight requests multiply the cost")
    }

    let rules = EndpointHealth.Rules(
        consecutiveFailures: 3, baseEjection: .seconds(10), maxEjection: .seconds(25), maxEjectedPercent: 50)

    @Test func consecutiveFailuresEjectForABackoffThatGrowsAndStartsOver() {
        var health = EndpointHealth()
        var results: [TimeAmount?] = [health.failed(at: t0, rules: rules, mayEject: true)]
        health.succeeded(at: t0)
        for _ in 0..<3 { results.append(health.failed(at: t0, rules: rules, mayEject: true)) }
        #expect(results == [nil, nil, nil, .seconds(10)], "a success breaks the run; the third in a row ejects")
        #expect(health.isEjected(at: t0 + .seconds(9)) && !health.isEjected(at: t0 + .seconds(10)))
        // Re-admitted, it fails again at once: ejected for twice as long, then capped.
        let t1 = t0 + .seconds(11)
        for _ in 0..<2 { _ = health.failed(at: t1, rules: rules, mayEject: true) }
        let second = health.failed(at: t1, rules: rules, mayEject: true)
        #expect(second == .seconds(20))
        let t2 = t1 + .seconds(21)
        for _ in 0..<2 { _ = health.failed(at: t2, rules: rules, mayEject: true) }
        let third = health.failed(at: t2, rules: rules, mayEject: true)
        #expect(third == .seconds(25), "maxEjectionTime caps it")
        // In for as long as its last ejection lasted: the backoff starts over from the base.
        let t3 = t2 + .seconds(25) + .seconds(26)
        health.succeeded(at: t3)
        for _ in 0..<2 { _ = health.failed(at: t3, rules: rules, mayEject: true) }
        let fresh = health.failed(at: t3, rules: rules, mayEject: true)
        #expect(fresh == .seconds(10))
        var capped = EndpointHealth()
        var ejections: [TimeAmount] = []
        for _ in 0..<5 { if let e = capped.failed(at: t0, rules: rules, mayEject: false) { ejections.append(e) } }
        #expect(ejections.isEmpty, "over the cap nothing is ejected")
    }

    @Test func retryRulesSayWhatIsSafeToSendAgain() throws {
        var spec = TrafficPolicy.Retries()
        spec.retryOn = ["503", "5xx", "reset", "unavailable"]
        spec.nonIdempotent = [RouteMatch(methods: ["POST"], paths: ["/orders/*"])]
        let r = try RetryRules(spec)
        let get = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x")
        let post = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/x")
        let allowedPost = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/orders/7?x=1")
        #expect(r.allows(.unsent, for: post, isGRPC: false), "never reached the app: any method")
        #expect(r.allows(.status(503), for: get, isGRPC: false) && r.allows(.status(500), for: get, isGRPC: false))
        #expect(!r.allows(.status(404), for: get, isGRPC: false))
        #expect(!r.allows(.status(503), for: post, isGRPC: false), "POST is never replayed by default")
        #expect(r.allows(.status(503), for: allowedPost, isGRPC: false), "…unless the route is listed")
        #expect(r.allows(.reset(pooled: false), for: get, isGRPC: false))
        #expect(!r.allows(.reset(pooled: false), for: post, isGRPC: false))
        #expect(r.allows(.grpc(14), for: post, isGRPC: true) && !r.allows(.grpc(13), for: post, isGRPC: true))
        let safeOnly = try RetryRules(TrafficPolicy.Retries())
        #expect(!safeOnly.allows(.status(503), for: get, isGRPC: false), "no status is retried unless listed")
        #expect(!safeOnly.allows(.reset(pooled: false), for: get, isGRPC: false))
        #expect(safeOnly.allows(.reset(pooled: true), for: get, isGRPC: false), "a stale pooled connection is")
        #expect(safeOnly.allows(.perTryTimeout, for: get, isGRPC: false))
        #expect(!safeOnly.allows(.perTryTimeout, for: post, isGRPC: false))
    }

    @Test func deadlinesAreReadFromEitherHeaderAndWrittenAsWhatIsLeft() {
        #expect(DeadlineHeaders.remaining(in: ["x-mesh-timeout-ms": "1500"]) == .milliseconds(1500))
        #expect(DeadlineHeaders.remaining(in: ["grpc-timeout": "2S", "x-mesh-timeout-ms": "2500"]) == .seconds(2))
        #expect(DeadlineHeaders.remaining(in: ["grpc-timeout": "100m"]) == .milliseconds(100))
        #expect(DeadlineHeaders.remaining(in: ["x-mesh-timeout-ms": "soon"]) == nil)
        #expect(DeadlineHeaders.remaining(in: ["grpc-timeout": "123456789S"]) == nil, "9 digits")
        #expect(DeadlineHeaders.remaining(in: ["x-mesh-timeout-ms": "999999999999"]) == nil, "over a day")
        var headers: HTTPHeaders = ["grpc-timeout": "10S"]
        DeadlineHeaders.write(deadline: t0 + .milliseconds(750), at: t0, isGRPC: true, into: &headers)
        #expect(headers.first(name: "x-mesh-timeout-ms") == "750" && headers.first(name: "grpc-timeout") == "750m")
    }
}
