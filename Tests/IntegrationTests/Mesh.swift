import Foundation

/// A running control plane plus helpers to add sidecars, on top of `MeshProcesses`.
final class Mesh: @unchecked Sendable {
    let p: MeshProcesses
    let control: String
    let controlProcess: Process
    /// The control plane's admin port (/metrics, /ready, /live).
    let controlAdmin: String
    var meshctlEnv: [String: String] { ["MESHCTL_CONFIG": "\(p.dir)/control/admin/meshctl.yaml"] }

    init(controlFlags: [String] = []) throws {
        p = try MeshProcesses()
        controlProcess = try p.start(
            "mesh-control", ["serve", "--data-dir", "\(p.dir)/control", "--listen", "127.0.0.1:0"] + controlFlags,
            log: "control.log")
        control = try p.field("control.log", "address")
        controlAdmin = try p.field("control.log", "admin")
    }

    func token(_ service: String, extra: [String] = []) throws -> String {
        let r = try p.run("meshctl", ["token", "create", "--service", service] + extra, env: meshctlEnv)
        guard r.status == 0 else { throw TestFailure("meshctl token create failed: \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    struct Sidecar {
        let inbound: String
        let outbound: String
        let admin: String
        let dataDir: String
        let process: Process
        let log: String
        /// What it was started with (to start it again).
        var arguments: [String] = []
    }

    /// Starts a sidecar for `service` with a fresh token; waits until it is registered. Its inbound listens on a
    /// port of its choosing unless `extra` gives `--inbound`.
    func sidecar(_ service: String, app: Int, extra: [String] = []) throws -> Sidecar {
        let tokenFile = "\(p.dir)/\(service)-\(UUID().uuidString.prefix(4)).token"
        try MeshProcesses.writeSecret(try token(service), to: tokenFile)
        let log = "\(service)-sidecar-\(UUID().uuidString.prefix(4)).log"
        let data = "\(p.dir)/\(service)-data-\(UUID().uuidString.prefix(4))"
        let arguments =
            [
                "--service", service, "--control", control, "--token-file", tokenFile, "--app", "127.0.0.1:\(app)",
                "--data-dir", data, "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            ] + (extra.contains("--inbound") ? [] : ["--inbound", "127.0.0.1:0"]) + extra
        let process = try p.start("mesh-sidecar", arguments, log: log)
        let sidecar = Sidecar(
            inbound: try p.field(log, "inbound"), outbound: try p.field(log, "outbound"),
            admin: try p.field(log, "admin"), dataDir: data, process: process, log: log, arguments: arguments)
        _ = try p.field(log, "endpoint")  // the "registered" line
        return sidecar
    }

    /// Stops `sidecar` (SIGTERM, waiting for its exit) and starts it again with the same flags and data
    /// directory; returns once it listens (it does not wait for a registration: the control plane may be down).
    func restart(_ sidecar: Sidecar) throws -> Sidecar {
        sidecar.process.terminate()
        sidecar.process.waitUntilExit()
        let log = sidecar.log.replacingOccurrences(of: ".log", with: "-restarted.log")
        let process = try p.start("mesh-sidecar", sidecar.arguments, log: log)
        return Sidecar(
            inbound: try p.field(log, "inbound"), outbound: try p.field(log, "outbound"),
            admin: try p.field(log, "admin"), dataDir: sidecar.dataDir, process: process, log: log,
            arguments: sidecar.arguments)
    }

    /// A `caller` sidecar (no app of its own) with an upstream bind on a free port for each of `services`,
    /// and the binds' addresses by service.
    func caller(binding services: [String], extra: [String] = []) throws -> (sidecar: Sidecar, binds: [String: String])
    {
        let caller = try sidecar(
            "caller", app: 1, extra: services.flatMap { ["--upstream", "\($0)=127.0.0.1:0"] } + extra)
        var binds: [String: String] = [:]
        for service in services { binds[service] = try p.field(caller.log, "upstream_\(service)") }
        return (caller, binds)
    }

    func curl(via proxy: String, _ url: String, _ extra: [String] = []) throws -> (status: Int32, output: String) {
        try p.run(
            "/usr/bin/curl", ["-s", "-i", "--max-time", "10", url] + extra,
            env: ["http_proxy": "http://\(proxy)", "no_proxy": ""])
    }

    /// A sidecar's `/config`, parsed (empty when it does not answer).
    func config(_ sidecar: Sidecar) throws -> [String: Any] {
        let r = try p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://\(sidecar.admin)/config"])
        return (try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]) ?? [:]
    }

    /// Established TCP connections from `process` to the control plane.
    func controlConnections(from process: Process) throws -> Int {
        let port = control.split(separator: ":").last!
        let r = try p.run("/usr/bin/ss", ["-tnpH", "state", "established", "( dport = :\(port) )"])
        return r.output.split(separator: "\n").filter { $0.contains("pid=\(process.processIdentifier),") }.count
    }

    func stop() { p.stop() }
}
