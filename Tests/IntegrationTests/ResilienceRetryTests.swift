import Foundation
import Testing

/// Retries and timeouts end to end: a caller's sidecar in front of real misbehaving backends behind their own
/// sidecars, the policy pushed by the control plane, the backends counting what reached them.
@Suite struct ResilienceRetryTests {
    /// 503 twice then 200: a GET succeeds on its third try; a POST is answered with the 503 (the app saw it once)
    /// until the policy lists its route as safe to replay.
    @Test func aGetIsRetriedAndAPostOnlyWhereThePolicySaysSo() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let backend = try mesh.backend("b1")
        let (caller, _) = try mesh.caller(binding: [])
        try mesh.applyTrafficPolicy(
            "orders", "retries: {attempts: 2, retryOn: [\"503\"], backoff: {base: 5ms}}", callers: [caller])

        try backend.set(#"{"statuses": [503, 503, 200]}"#)
        let get = try mesh.curl(via: caller.outbound, "http://orders/items")
        #expect(get.output.hasPrefix("HTTP/1.1 200"), "\(get.output)")
        #expect(try backend.requests() == 3, "the backend saw the request three times")

        try backend.set(#"{"statuses": [503, 200]}"#)
        let post = try mesh.curl(via: caller.outbound, "http://orders/items", ["-d", "order=1"])
        #expect(post.output.hasPrefix("HTTP/1.1 503"), "a POST is not replayed: \(post.output)")
        #expect(try backend.requests() == 1)

        try mesh.applyTrafficPolicy(
            "orders", "retries: {attempts: 2, retryOn: [\"503\"], nonIdempotent: [{methods: [POST], paths: [/items]}]}",
            callers: [caller])
        try backend.set(#"{"statuses": [503, 200]}"#)
        let allowed = try mesh.curl(via: caller.outbound, "http://orders/items", ["-d", "order=2"])
        #expect(allowed.output.hasPrefix("HTTP/1.1 200"), "the policy allows it on /items: \(allowed.output)")
        #expect(try backend.requests() == 2)
        #expect(try mesh.metric(caller, #"mesh_retries_total{direction="outbound"}"#) == 3)
    }

    /// A backend that never answers: 504 `timeout` at the request timeout; with a per-try timeout and a second,
    /// healthy endpoint, every request succeeds there.
    @Test func aHangIsCutAtTheRequestTimeoutOrRetriedElsewhereAfterThePerTryTimeout() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let hung = try mesh.backend("hung")
        let (caller, _) = try mesh.caller(binding: [])
        try hung.set(#"{"mode": "hang"}"#)
        try mesh.applyTrafficPolicy("orders", "timeouts: {request: 1s}", callers: [caller])
        let started = Date()
        let r = try mesh.curl(via: caller.outbound, "http://orders/slow")
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.output.hasPrefix("HTTP/1.1 504"), "\(r.output)")
        #expect(r.output.lowercased().contains("x-mesh-error: timeout"), "\(r.output)")
        #expect(elapsed >= 0.95 && elapsed < 2.5, "answered at the timeout, not later: \(elapsed) s")
        #expect(try mesh.metric(caller, #"mesh_timeouts_total{direction="outbound",timeout="request"}"#) == 1)
        #expect(mesh.p.text(caller.log).contains(#""cause":"timeout""#))

        _ = try mesh.backend("healthy")
        try mesh.applyTrafficPolicy(
            "orders", "timeouts: {request: 5s}\nretries: {perTryTimeout: 300ms}\nloadBalancing: round_robin",
            callers: [caller])
        let report = try mesh.paced("http://orders/slow", via: caller.outbound, count: 10, rate: 10, concurrency: 2)
        #expect(report.statuses() == ["200": 10], "every request ends on the healthy endpoint: \(report)")
        #expect(report.backends() == ["healthy": 10], "\(report)")
        #expect(report.maxLatencyMs < 1500, "at most one per-try timeout each: \(report)")
        #expect(
            try mesh.metric(caller, #"mesh_timeouts_total{direction="outbound",timeout="per_try"}"#) == 0,
            "a per-try timeout that was retried did not end its exchange")
        #expect((try hung.stats()["requests"] as? Int ?? 0) >= 1, "the hung endpoint was tried")
    }

    /// Failures that provably never reached an app are retried whatever the method: a dead sidecar (connect
    /// refused) and a live sidecar whose app is gone (it says `x-mesh-unprocessed`). A reset after the request
    /// was written is not, for a POST; a GET is, where the policy lists `reset`.
    @Test func failuresBeforeTheAppAreRetriedAndAResetAfterAPostIsNot() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let live = try mesh.backend("live")
        let dead = try mesh.backend("dead")
        let appless = try mesh.backend("appless", extra: ["--health-check", "none"])
        let (caller, _) = try mesh.caller(binding: [])
        try mesh.applyTrafficPolicy("orders", "loadBalancing: round_robin\nretries: {attempts: 2}", callers: [caller])
        // Registered still (its lease has not lapsed), but nobody listens: connect refused.
        kill(dead.sidecar.process.processIdentifier, SIGKILL)
        dead.sidecar.process.waitUntilExit()
        // Its sidecar is up; its app is not.
        kill(appless.app.processIdentifier, SIGKILL)
        appless.app.waitUntilExit()
        let report = try mesh.paced(
            "http://orders/items", via: caller.outbound, count: 12, rate: 20, concurrency: 1, method: "POST",
            extra: ["--data", "x"])
        #expect(
            report.statuses() == ["200": 12],
            "\(report)\n\(mesh.p.text(caller.log))\n\(mesh.p.text(appless.sidecar.log))")
        #expect(try live.requests() == 12, "each POST reached an app exactly once")
        #expect(try mesh.metric(caller, #"mesh_retries_total{direction="outbound"}"#) >= 2)
        #expect(
            try mesh.metric(appless.sidecar, #"mesh_proxy_errors_total{direction="inbound",cause="connect_failed"}"#)
                >= 1, "the appless sidecar was tried and said so")

        // One endpoint that resets after reading the request.
        let mesh2 = try Mesh()
        defer { mesh2.stop() }
        let resetting = try mesh2.backend("resetting")
        let (caller2, _) = try mesh2.caller(binding: [])
        try mesh2.applyTrafficPolicy(
            "orders", "retries: {attempts: 2, retryOn: [reset], backoff: {base: 5ms}}", callers: [caller2])
        try resetting.set(#"{"mode": "reset_after_request"}"#)
        let post = try mesh2.curl(via: caller2.outbound, "http://orders/pay", ["-d", "amount=5"])
        #expect(post.output.hasPrefix("HTTP/1.1 502"), "\(post.output)")
        #expect(post.output.lowercased().contains("x-mesh-error: upstream_reset"), "\(post.output)")
        #expect(try resetting.requests() == 1, "a POST that reached the app is never replayed")
        try resetting.set(#"{"mode": "reset_after_request"}"#)
        _ = try mesh2.curl(via: caller2.outbound, "http://orders/balance")
        #expect(try resetting.requests() == 3, "a GET is, as the policy lists reset: one try and two retries")
    }

    /// Every endpoint answers 503 while requests keep coming: retries stay within the budget (20 % of requests
    /// plus 10 a second), so the backend sees at most that much extra load; callers get the 503 or
    /// `retry_budget_exhausted`, never a hang.
    @Test func anOutageIsNotMultipliedByRetries() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let backend = try mesh.backend("down")
        let (caller, _) = try mesh.caller(binding: [])
        try mesh.applyTrafficPolicy(
            "orders", "retries: {attempts: 2, retryOn: [\"503\"], backoff: {base: 1ms, max: 5ms}}", callers: [caller])
        try backend.set(#"{"mode": "fail"}"#)
        let report = try mesh.paced("http://orders/x", via: caller.outbound, count: 600, rate: 100, concurrency: 8)
        let seen = try backend.requests()
        // 20 % of the requests in the 10 s window, plus 10 a second over that window (a reserve of 100).
        let allowed = Double(report.sent) * 1.2 + 100
        #expect(report.statuses() == ["503": 600], "\(report)")
        #expect(report.transportErrors == 0 && report.maxLatencyMs < 2000, "\(report)")
        #expect(
            Double(seen) <= allowed + 5, "backend saw \(seen) for \(report.sent) (allowed \(allowed))")
        #expect(seen > 600 + 100 + 30, "the percentage counts, not only the floor: \(seen)")
        #expect(try mesh.metric(caller, #"mesh_retry_budget_exhausted_total{direction="outbound"}"#) > 0)
        print("outage amplification: \(seen) backend requests for \(report.sent) sent in \(report.elapsed) s")
    }
}

/// gRPC through the mesh with `grpcio`: a trailers-only UNAVAILABLE is retried where the policy lists
/// `unavailable`, and the policy's request timeout reaches the server as its call's deadline (`grpc-timeout`).
@Suite struct ResilienceGRPCTests {
    @Test func unavailableIsRetriedAndTheDeadlineReachesTheServer() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let app = try mesh.p.startPython("\(MeshProcesses.fixtures)/grpc_echo.py", log: "grpc-app.log")
        _ = try mesh.sidecar("echo", app: app, extra: ["--protocol", "http2"])
        let (caller, binds) = try mesh.caller(binding: ["echo"])
        try mesh.applyTrafficPolicy(
            "echo", "timeouts: {request: 2s}\nretries: {attempts: 2, retryOn: [unavailable], backoff: {base: 5ms}}",
            callers: [caller], protocol: "grpc")
        let client = """
            import grpc, sys
            channel = grpc.insecure_channel(sys.argv[1])
            print("flaky", channel.unary_unary("/echo.Echo/Flaky")(b"k1", timeout=10).decode())
            print("left", channel.unary_unary("/echo.Echo/TimeLeft")(b"", timeout=30).decode())
            """
        let r = try mesh.p.run("/usr/bin/python3", ["-c", client, binds["echo"]!], timeout: 60)
        #expect(r.output.contains("flaky ok after 3 calls"), "two UNAVAILABLE answers retried: \(r.output)")
        let left = r.output.split(separator: "\n").first { $0.hasPrefix("left ") }.flatMap { Double($0.dropFirst(5)) }
        #expect((left ?? 99) <= 2.0 && (left ?? 0) > 1.0, "the server's deadline is the policy's 2 s: \(r.output)")
        #expect(try mesh.metric(caller, #"mesh_retries_total{direction="outbound"}"#) == 2)
    }
}
