import Foundation
import Testing

/// Twenty shutdowns of a sidecar and its control plane, in the orders they happen in a fleet: the sidecar
/// first, the control plane first, the control plane restarted under a running sidecar, and SIGTERM while a
/// sidecar is still starting. Every process must exit cleanly and log no NIO misuse (a task scheduled on an
/// event loop that has shut down is a warning today and a crash in a future NIO).
@Suite(.serialized) struct ShutdownTests {
    static let misuse = ["Cannot schedule tasks", "BUG IN", "Fatal error", "has already shut down"]

    @Test func twentyShutdownsInVariedOrdersLeaveNoErrorLine() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        let port = try MeshProcesses.freePort()
        let control = "127.0.0.1:\(port)"
        var controlRuns = 0
        func startControl() throws -> Process {
            controlRuns += 1
            let log = "control-\(controlRuns).log"
            let process = try p.start(
                "mesh-control",
                ["serve", "--data-dir", "\(p.dir)/control", "--listen", control, "--lease-ttl", "3s"], log: log)
            _ = try p.field(log, "address")
            return process
        }
        var controlPlane = try startControl()
        let env = ["MESHCTL_CONFIG": "\(p.dir)/control/admin/meshctl.yaml"]
        let token = try p.run("meshctl", ["token", "create", "--service", "orders", "--uses", "1"], env: env)
        try MeshProcesses.writeSecret(token.output.trimmingCharacters(in: .whitespacesAndNewlines), to: "\(p.dir)/t")
        let app = try p.startApp("orders", log: "app.log")
        var sidecarRuns = 0
        /// A sidecar of orders (enrolled once; later runs start from the identity on disk).
        func startSidecar(waitRegistered: Bool = true) throws -> (Process, String) {
            sidecarRuns += 1
            let log = "sidecar-\(sidecarRuns).log"
            let process = try p.start(
                "mesh-sidecar",
                [
                    "--service", "orders", "--control", control, "--token-file", "\(p.dir)/t", "--app",
                    "127.0.0.1:\(app)", "--data-dir", "\(p.dir)/orders", "--inbound", "127.0.0.1:0", "--outbound",
                    "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain-timeout", "1s",
                ], log: log)
            if waitRegistered { _ = try p.field(log, "endpoint") }
            return (process, log)
        }
        func stop(_ process: Process, within seconds: TimeInterval = 15) throws -> Int32 {
            process.terminate()
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            guard !process.isRunning else { throw TestFailure("pid \(process.processIdentifier) ignored SIGTERM") }
            return process.terminationStatus
        }
        var orders = ["sidecar first", "control plane first", "control plane restarted", "during startup"]
        orders += orders
        orders += orders + orders.prefix(4)
        for (round, order) in orders.enumerated() {
            switch order {
            case "sidecar first":
                let (sidecar, _) = try startSidecar()
                #expect(try stop(sidecar) == 0, "round \(round)")
            case "control plane first":
                let (sidecar, _) = try startSidecar()
                #expect(try stop(controlPlane) == 0, "round \(round)")
                usleep(300_000)
                #expect(try stop(sidecar) == 0, "round \(round)")
                controlPlane = try startControl()
            case "control plane restarted":
                let (sidecar, log) = try startSidecar()
                #expect(try stop(controlPlane) == 0, "round \(round)")
                controlPlane = try startControl()
                // The sidecar reconnects and renews its lease (it renews every second with a 3 s lease).
                let renewed = Date().addingTimeInterval(10)
                while !p.text(log).contains("lease renewal failed") && Date() < renewed { usleep(50_000) }
                usleep(2_000_000)
                #expect(try stop(sidecar) == 0, "round \(round)")
            default:
                let (sidecar, _) = try startSidecar(waitRegistered: false)
                usleep(useconds_t(round * 20_000 % 300_000))
                // Before its signal handlers are installed (while it enrols or loads its identity), SIGTERM ends
                // the process as the default action does; after, it drains and exits 0.
                let status = try stop(sidecar)
                let killedEarly = sidecar.terminationReason == .uncaughtSignal && status == SIGTERM
                #expect(status == 0 || killedEarly, "round \(round): exit \(status)")
            }
        }
        #expect(try stop(controlPlane) == 0)
        #expect(sidecarRuns == 20)
        for log in (1...sidecarRuns).map({ "sidecar-\($0).log" }) + (1...controlRuns).map({ "control-\($0).log" }) {
            let text = p.text(log)
            for line in text.split(separator: "\n") where Self.misuse.contains(where: { line.contains($0) }) {
                Issue.record("\(log): \(line)")
            }
        }
    }
}
