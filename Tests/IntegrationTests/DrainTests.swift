import Foundation
import Testing

/// SIGTERM drains: not ready, deregistered, no new connections, in-flight requests finish, then exit.
@Suite(.serialized)
struct DrainTests {
    @Test func sigtermLetsInFlightRequestsFinish() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: ordersApp)
        let frontend = try mesh.sidecar("frontend", app: 1)

        // A request that takes 3 s, in flight through both sidecars when they are told to stop.
        let inFlight = try mesh.p.start(
            "/usr/bin/curl", ["-sS", "--max-time", "20", "-w", "\\n%{http_code}", "http://orders/slow?ms=3000"],
            log: "slow.log",
            env: ["http_proxy": "http://\(frontend.outbound)"])
        usleep(1_000_000)
        let pids = [orders.process.processIdentifier, frontend.process.processIdentifier]
        func alive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 && !isZombie(pid) }
        for pid in pids { kill(pid, SIGTERM) }
        usleep(500_000)

        let ready = try mesh.p.run(
            "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(orders.admin)/ready"])
        #expect(ready.output == "503", "a draining sidecar is not ready: \(ready.output)")
        let fresh = try mesh.p.run(
            "/usr/bin/curl",
            ["-s", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}", "http://\(frontend.outbound)/"])
        #expect(fresh.output == "000", "no new connections while draining: \(fresh.output)")
        #expect(
            pids.allSatisfy(alive),
            "both still running while the request is in flight: \(mesh.p.text(frontend.log).suffix(2500))")

        inFlight.waitUntilExit()
        #expect(
            mesh.p.text("slow.log").hasSuffix("\n200"), "the in-flight request completed: \(mesh.p.text("slow.log"))")
        let deadline = Date().addingTimeInterval(10)
        while pids.contains(where: alive) && Date() < deadline { usleep(100_000) }
        #expect(!pids.contains(where: alive), "both exit once drained")
        #expect(mesh.p.text("control.log").contains("instance deregistered"))
    }

    /// An exited child the test runner has not reaped yet still answers kill(pid, 0).
    func isZombie(_ pid: Int32) -> Bool {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
