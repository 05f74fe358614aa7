import Foundation
import Testing

/// Discovery that follows reality: a sidecar killed with SIGKILL vanishes when its lease lapses, an app that
/// fails its health check leaves the served set and comes back when it passes, and callers can tell a known
/// service with no live instance (`no_endpoints`) from an unknown one (`unknown_service`).
@Suite(.serialized)
struct DiscoveryLeaseTests {
    /// Polls `GET http://service/` through `proxy` until `x-mesh-error` is `cause` (or the status is 200 when
    /// `cause` is nil); returns the seconds it took, or nil at the deadline.
    func waitFor(_ mesh: Mesh, via proxy: String, _ service: String, cause: String?, within: TimeInterval) throws
        -> TimeInterval?
    {
        let start = Date()
        while Date().timeIntervalSince(start) < within {
            let r = try mesh.curl(via: proxy, "http://\(service)/")
            let lower = r.output.lowercased()
            if let cause, lower.contains("x-mesh-error: \(cause)") { return Date().timeIntervalSince(start) }
            if cause == nil, r.output.hasPrefix("HTTP/1.1 200") { return Date().timeIntervalSince(start) }
            usleep(200_000)
        }
        return nil
    }

    @Test func aKilledSidecarVanishesWithinItsLease() throws {
        let mesh = try Mesh(controlFlags: ["--lease-ttl", "3s"])
        defer { mesh.stop() }
        let app = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: app)
        let caller = try mesh.sidecar("caller", app: 1, extra: ["--health-check", "none"])
        #expect(try waitFor(mesh, via: caller.outbound, "orders", cause: nil, within: 10) != nil)

        kill(orders.process.processIdentifier, SIGKILL)
        orders.process.waitUntilExit()
        // Lease 3 s from the last renewal (at most 1 s before the kill), the keeper's 1 s tick, the watch push.
        let gone = try waitFor(mesh, via: caller.outbound, "orders", cause: "no_endpoints", within: 8)
        #expect(gone != nil, "the dead instance was still served after 8 s")
        #expect((gone ?? 99) <= 5.5, "vanished after \(gone ?? -1) s")
        print("lease: killed sidecar's instance gone after \(String(format: "%.1f", gone ?? -1)) s (lease 3 s)")

        // Known with zero instances is not the same as never heard of.
        let ghost = try mesh.curl(via: caller.outbound, "http://ghost/")
        #expect(ghost.output.lowercased().contains("x-mesh-error: unknown_service"), "\(ghost.output)")
        #expect(mesh.p.text("control.log").contains("leases lapsed"))
    }

    @Test func anUnhealthyAppIsNotServedUntilItRecovers() throws {
        let mesh = try Mesh(controlFlags: ["--lease-ttl", "3s"])
        defer { mesh.stop() }
        let port = try MeshProcesses.freePort()
        let script = "\(MeshProcesses.packageRoot)/demo/app.py"
        var app = try mesh.p.start("/usr/bin/python3", [script, "orders", "\(port)"], log: "app-1.log")
        try mesh.p.waitForPort(port)
        let orders = try mesh.sidecar("orders", app: port)  // default check: tcp
        let caller = try mesh.sidecar("caller", app: 1, extra: ["--health-check", "none"])
        #expect(try waitFor(mesh, via: caller.outbound, "orders", cause: nil, within: 10) != nil)

        kill(app.processIdentifier, SIGKILL)  // the app crashes; its sidecar stays up
        app.waitUntilExit()
        let out = try waitFor(mesh, via: caller.outbound, "orders", cause: "no_endpoints", within: 6)
        #expect(out != nil, "an app that refuses connections was still served after 6 s")
        #expect(mesh.p.text(orders.log).contains("app failed its health check"))

        app = try mesh.p.start("/usr/bin/python3", [script, "orders", "\(port)"], log: "app-2.log")
        try mesh.p.waitForPort(port)
        let back = try waitFor(mesh, via: caller.outbound, "orders", cause: nil, within: 6)
        #expect(back != nil, "the recovered app was not served again within 6 s")
        #expect(mesh.p.text(orders.log).contains("app passes its health check again"))
        print(
            "health: out after \(String(format: "%.1f", out ?? -1)) s, back after \(String(format: "%.1f", back ?? -1)) s"
        )

        // An HTTP check that the app fails (503) keeps the instance registered but never served.
        let billingApp = try mesh.p.startApp("orders", log: "billing-app.log")
        let billing = try mesh.sidecar("billing", app: billingApp, extra: ["--health-check", "http:/status?code=503"])
        let refused = try mesh.curl(via: caller.outbound, "http://billing/")
        #expect(refused.output.lowercased().contains("x-mesh-error: no_endpoints"), "\(refused.output)")
        #expect(mesh.p.text(billing.log).contains("answered 503"))
    }
}
