import Foundation
import Testing

/// Balancing, ejection, circuit breaking, deadline propagation and static stability end to end, with real
/// misbehaving backends behind their own sidecars.
@Suite struct ResilienceBalancingTests {
    /// Two endpoints, one ten times slower: peak-EWMA (the default) sends at least 80 % to the fast one.
    @Test func peakEWMASendsMostRequestsToTheFastEndpoint() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let fast = try mesh.backend("fast")
        let slow = try mesh.backend("slow")
        try fast.set(#"{"mode": "slow", "delay_ms": 5}"#)
        try slow.set(#"{"mode": "slow", "delay_ms": 50}"#)
        let (caller, _) = try mesh.caller(binding: [])
        let report = try mesh.paced("http://orders/x", via: caller.outbound, count: 300, rate: 60, concurrency: 4)
        let counts = report.backends()
        #expect(report.statuses() == ["200": 300], "\(report)")
        #expect(counts["fast", default: 0] >= 240, "\(counts)")
    }

    /// An endpoint that fails every request is ejected after its consecutive failures (within a second of
    /// steady traffic), gets nothing while ejected, and is re-admitted after its backoff.
    @Test func aFailingEndpointIsEjectedAndReadmitted() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        _ = try mesh.backend("good")
        let bad = try mesh.backend("bad")
        let (caller, _) = try mesh.caller(binding: [])
        try mesh.applyTrafficPolicy(
            "orders",
            "loadBalancing: round_robin\nretries: {attempts: 0}\noutlierDetection: {consecutiveFailures: 3, baseEjectionTime: 2s}",
            callers: [caller])
        try bad.set(#"{"mode": "fail"}"#)
        let report = try mesh.paced("http://orders/x", via: caller.outbound, count: 50, rate: 50, concurrency: 1)
        #expect(try bad.requests() == 3, "three failures eject it; it sees nothing after: \(report)")
        #expect(report.statuses()["200"] == 47, "\(report)")
        #expect(try mesh.metric(caller, "mesh_endpoint_ejections_total") == 1)
        #expect(mesh.p.text(caller.log).contains("endpoint ejected after consecutive failures"))

        // Healthy again, and the backoff over: back in rotation.
        try bad.set(#"{"mode": "ok"}"#)
        Thread.sleep(forTimeInterval: 2.2)
        let later = try mesh.paced("http://orders/x", via: caller.outbound, count: 20, rate: 50, concurrency: 1)
        #expect(later.statuses() == ["200": 20], "\(later)")
        #expect(try bad.requests() >= 5, "re-admitted: \(later)")
    }

    /// Over `maxRequests` in flight, a caller gets 503 `circuit_open` at once instead of joining a queue.
    @Test func overTheLimitACallerIsRefusedAtOnce() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let backend = try mesh.backend("busy")
        let (caller, _) = try mesh.caller(binding: [])
        try mesh.applyTrafficPolicy("orders", "circuitBreaking: {maxRequests: 2}", callers: [caller])
        try backend.set(#"{"mode": "slow", "delay_ms": 1500}"#)
        let report = try mesh.paced("http://orders/x", via: caller.outbound, count: 6, rate: 100, concurrency: 6)
        #expect(report.statuses() == ["200": 2, "503": 4], "\(report)")
        #expect(report.errors() == ["circuit_open": 4], "\(report)")
        #expect(try backend.requests() == 2)
    }

    /// a → b → c with c hanging: a's request timeout travels with the request (`x-mesh-timeout-ms`, copied by b's
    /// app as apps copy trace headers), so c's sidecar gives up on c at a's deadline, not when c's own limits
    /// would (b's app would wait 30 s).
    @Test func theCallersDeadlineReachesTheLastHop() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let c = try mesh.backend("c", service: "inventory")
        try c.set(#"{"mode": "hang"}"#)
        let relayPort = try MeshProcesses.freePort()
        let b = try mesh.sidecar("orders", app: relayPort, extra: ["--health-check", "none"])
        try mesh.p.start(
            "/usr/bin/python3",
            [
                "\(MeshProcesses.fixtures)/relay_app.py", "--target", "http://inventory", "--proxy", b.outbound,
                "\(relayPort)",
            ], log: "relay.log")
        try mesh.p.waitForPort(relayPort)
        let (a, _) = try mesh.caller(binding: [])
        try mesh.applyTrafficPolicy("orders", "timeouts: {request: 1s}", callers: [a])

        let started = Date()
        let r = try mesh.curl(via: a.outbound, "http://orders/deep")
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.output.hasPrefix("HTTP/1.1 504"), "\(r.output)")
        #expect(elapsed < 2, "\(elapsed) s")
        var disconnects: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(5)
        while disconnects.isEmpty, Date() < deadline {
            disconnects = try c.stats()["disconnects"] as? [[String: Any]] ?? []
            usleep(100_000)
        }
        let after = disconnects.first?["after_ms"] as? Double ?? .infinity
        #expect(after < 1500, "c's sidecar let go of c at a's deadline: \(disconnects)")
        let headers = try c.stats()["headers"] as? [[String: String]] ?? []
        let seen = headers.compactMap { $0["x-mesh-timeout-ms"] }.compactMap(Int.init)
        #expect(seen.contains { $0 > 0 && $0 <= 1000 }, "c sees what is left of the deadline: \(headers)")
        // b's outbound and c's inbound hold the same deadline; whichever fires first ends it (the other sees the
        // connection go).
        let cut =
            try mesh.metric(c.sidecar, #"mesh_timeouts_total{direction="inbound",timeout="deadline"}"#)
            + mesh.metric(b, #"mesh_timeouts_total{direction="outbound",timeout="deadline"}"#)
        #expect(cut >= 1, "a propagated deadline, not a's own timeout, ended the hops after a")
    }

    /// A caller's sidecar restarted while the control plane is down starts from the endpoints it persisted and
    /// still reaches its old destination; `/config` says where the set came from and how old it is.
    @Test func aRestartedCallerReachesItsOldDestinationWithoutTheControlPlane() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        _ = try mesh.backend("orders-1")
        let (caller, _) = try mesh.caller(binding: [])
        #expect(try mesh.curl(via: caller.outbound, "http://orders/x").output.hasPrefix("HTTP/1.1 200"))
        let file = "\(caller.dataDir)/endpoints.json"
        let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600, "endpoints.json is private: \(String(describing: mode))")

        mesh.controlProcess.terminate()
        mesh.controlProcess.waitUntilExit()
        let restarted = try mesh.restart(caller)
        #expect(mesh.p.text(restarted.log).contains("last known endpoints loaded"))
        let r = try mesh.curl(via: restarted.outbound, "http://orders/x")
        #expect(r.output.hasPrefix("HTTP/1.1 200"), "\(r.output)")
        let config = try mesh.config(restarted)
        let orders = (config["destinations"] as? [String: Any])?["orders"] as? [String: Any] ?? [:]
        #expect(orders["source"] as? String == "disk", "\(config)")
        #expect((orders["age_seconds"] as? Int ?? -1) >= 0, "\(config)")
    }
}
