import Foundation
import Testing

/// Where requests go and what faults they meet, end to end: instance labels and weighted subsets, header routes
/// beating the split, injected aborts and delays, and policy changes under load that fail nothing.
@Suite struct TrafficShapingTests {
    static let service = """
        apiVersion: meshwork.dev/v1
        kind: Service
        metadata: {name: orders}
        spec:
          protocol: http
          subsets:
            - {name: stable, labels: {track: stable}}
            - {name: canary, labels: {track: canary}}
        ---
        apiVersion: meshwork.dev/v1
        kind: TrafficPolicy
        metadata: {name: orders}
        spec:
          service: orders

        """

    /// Two labelled backends and a caller that has already asked for orders (so it receives its policy).
    static func setUp(_ mesh: Mesh) throws -> (stable: Backend, canary: Backend, caller: Mesh.Sidecar) {
        let stable = try mesh.backend("stable", extra: ["--label", "track=stable"])
        let canary = try mesh.backend("canary", extra: ["--label", "track=canary", "--label", "zone=b"])
        let (caller, _) = try mesh.caller(binding: [])
        _ = try mesh.curl(via: caller.outbound, "http://orders/_control/stats")
        return (stable, canary, caller)
    }

    static func policy(_ lines: String) -> String {
        service + lines.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n") + "\n"
    }

    @Test func aNinetyTenSplitHoldsWithinThreePointsAndAHeaderRouteBeatsIt() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let (_, canary, caller) = try Self.setUp(mesh)
        #expect(try mesh.config(canary.sidecar)["labels"] as? [String: String] == ["track": "canary", "zone": "b"])
        try mesh.apply(
            Self.policy(
                """
                split: [{subset: stable, weight: 90}, {subset: canary, weight: 10}]
                routes:
                  - name: canary-by-header
                    match: {headers: {x-canary: "true"}}
                    subset: canary
                """), waitFor: [caller], running: "TrafficPolicy/orders")
        let report = try mesh.paced("http://orders/x", via: caller.outbound, count: 2000, rate: 500, concurrency: 8)
        #expect(report.statuses() == ["200": 2000], "\(report)")
        let share = Double(report.backends()["canary", default: 0]) / 20
        #expect(abs(share - 10) <= 3, "canary got \(share) % of 2000: \(report.backends())")

        let routed = try mesh.paced(
            "http://orders/x", via: caller.outbound, count: 50, rate: 200, concurrency: 2,
            extra: ["--header", "x-canary: true"])
        #expect(routed.backends() == ["canary": 50], "the header route beats the split: \(routed)")

        // The canary gone: the split gives its weight to stable; the header route has nowhere to go.
        canary.sidecar.process.terminate()
        canary.sidecar.process.waitUntilExit()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let orders = (try mesh.config(caller)["destinations"] as? [String: Any])?["orders"] as? [String: Any]
            if (orders?["endpoints"] as? [Any])?.count == 1 { break }
            usleep(100_000)
        }
        let after = try mesh.paced("http://orders/x", via: caller.outbound, count: 40, rate: 200, concurrency: 2)
        #expect(after.backends() == ["stable": 40], "\(after)")
        let lost = try mesh.curl(via: caller.outbound, "http://orders/x", ["-H", "x-canary: true"]).output
        #expect(lost.hasPrefix("HTTP/1.1 503") && lost.contains("x-mesh-error: no_endpoints"), "\(lost)")
    }

    @Test func aFiftyPercentAbortIsAnsweredAsConfiguredAndTheRestIsUntouched() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let (stable, canary, caller) = try Self.setUp(mesh)
        try mesh.apply(
            Self.policy(
                """
                routes:
                  - match: {paths: ["/drill/*"]}
                    fault: {abort: {httpStatus: 418, percent: 50}}
                  - match: {paths: ["/slow"]}
                    fault: {delay: {fixed: 300ms, percent: 100}}
                  - match: {paths: ["/stall"]}
                    fault: {delay: {fixed: 30s, percent: 100}}
                timeouts: {request: 1s}
                """), waitFor: [caller], running: "TrafficPolicy/orders")
        let drill = try mesh.paced("http://orders/drill/x", via: caller.outbound, count: 400, rate: 400, concurrency: 4)
        let aborted = drill.statuses()["418", default: 0]
        #expect(aborted >= 150 && aborted <= 250, "about half of 400: \(drill)")
        #expect(drill.statuses()["200", default: 0] == 400 - aborted, "\(drill)")
        #expect(drill.errors() == ["fault_injected": aborted], "\(drill)")
        #expect(try stable.requests() + canary.requests() == 400 - aborted, "aborted requests never left the caller")
        #expect(try mesh.metric(caller, #"mesh_faults_injected_total{fault="abort"}"#) == Double(aborted))

        let other = try mesh.paced("http://orders/other", via: caller.outbound, count: 100, rate: 400, concurrency: 4)
        #expect(other.statuses() == ["200": 100], "other routes untouched: \(other)")

        let started = Date()
        let slow = try mesh.curl(via: caller.outbound, "http://orders/slow").output
        #expect(slow.hasPrefix("HTTP/1.1 200") && Date().timeIntervalSince(started) >= 0.3, "\(slow)")
        // A delay longer than the request timeout ends at the timeout.
        let stallStart = Date()
        let stall = try mesh.curl(via: caller.outbound, "http://orders/stall").output
        let waited = Date().timeIntervalSince(stallStart)
        #expect(stall.hasPrefix("HTTP/1.1 504") && stall.contains("x-mesh-error: timeout"), "\(stall)")
        #expect(waited >= 0.9 && waited < 3, "\(waited) s")
        #expect(try mesh.metric(caller, #"mesh_faults_injected_total{fault="delay"}"#) == 2)
    }

    /// New versions (split weights, a route, an AuthorizationPolicy that allows the caller) applied while a
    /// paced load runs: every request succeeds.
    @Test func policyChangesUnderLoadFailNothing() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let (stable, canary, caller) = try Self.setUp(mesh)
        try mesh.apply(
            Self.policy("split: [{subset: stable, weight: 90}, {subset: canary, weight: 10}]"), waitFor: [caller],
            running: "TrafficPolicy/orders")
        let load = Locked<PacedReport?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            load.set(try? mesh.paced("http://orders/x", via: caller.outbound, count: 1500, rate: 250, concurrency: 6))
            done.signal()
        }
        let versions = [
            "split: [{subset: stable, weight: 50}, {subset: canary, weight: 50}]",
            "split: [{subset: stable, weight: 0}, {subset: canary, weight: 100}]\nroutes:\n  - {match: {paths: [/y]}, subset: stable}",
            "retries: {attempts: 1}\nsplit: [{subset: stable, weight: 100}, {subset: canary, weight: 0}]",
        ]
        for version in versions {
            Thread.sleep(forTimeInterval: 1)
            try mesh.apply(Self.policy(version), waitFor: [caller, stable.sidecar], running: "TrafficPolicy/orders")
        }
        try mesh.apply(
            AccessTests.declare(["caller"])
                + """
                apiVersion: meshwork.dev/v1
                kind: AuthorizationPolicy
                metadata: {name: orders}
                spec:
                  service: orders
                  rules: [{from: [caller]}]

                """, waitFor: [stable.sidecar, canary.sidecar], running: "AuthorizationPolicy/orders")
        #expect(done.wait(timeout: .now() + 60) == .success)
        let report = try #require(load.get())
        #expect(report.statuses() == ["200": 1500], "\(report)")
        #expect(report.transportErrors == 0, "\(report)")
        #expect(report.backends()["canary", default: 0] > 150, "the weights moved: \(report.backends())")
    }
}
