import Foundation
import Testing

/// Bad flags, bad tokens, bad CA files: refused with a clear message and the right exit code, nothing
/// issued, and the control plane keeps serving.
@Suite(.serialized)
struct BadInputTests {
    @Test func everyBinaryAnswersHelpAndVersion() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        for binary in ["mesh-sidecar", "mesh-control", "meshctl"] {
            let version = try p.run(binary, ["--version"])
            #expect(version.status == 0 && version.output.hasPrefix("\(binary) 0."), "\(binary): \(version.output)")
            let help = try p.run(binary, ["--help"])
            #expect(help.status == 0 && (help.output.contains("usage") || help.output.contains("USAGE")), "\(binary)")
        }
        #expect(try p.run("mesh-sidecar", ["--help"]).output.contains("--max-connections N"))
        #expect(try p.run("mesh-control", ["--help"]).output.contains("--max-instances-per-connection N"))
    }

    @Test func badFlagsExit64WithOneLineBeforeOpeningSockets() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        let base = [
            "--service", "orders", "--control", "127.0.0.1:7443", "--token-file", "/nonexistent", "--app",
            "127.0.0.1:8080", "--data-dir", "\(p.dir)/d",
        ]
        let cases: [([String], [String: String], String)] = [
            (base + ["--outbound", "127.0.0.1:70000"], [:], "--outbound=\"127.0.0.1:70000\": port must be 0...65535"),
            (base, ["MESH_OUTBOUND": "nope"], "MESH_OUTBOUND=\"nope\": must be HOST:PORT"),
            (base + ["--protocol", "grpc"], [:], "--protocol=\"grpc\""),
            (base + ["--colour", "red"], [:], "--colour is not a known flag"),
            (Array(base.dropFirst(2)), [:], "--service is required"),
            (["--service", "Bad_Name"] + Array(base.dropFirst(2)), [:], "--service=\"Bad_Name\""),
        ]
        for (args, env, expected) in cases {
            let r = try p.run("mesh-sidecar", args, env: env)
            #expect(r.status == 64, "\(args) \(env): \(r.output)")
            #expect(r.output.contains(expected), "\(r.output)")
            #expect(r.output.split(separator: "\n").count == 1, "one line: \(r.output)")
        }
        let cp = try p.run("mesh-control", ["serve", "--data-dir", "\(p.dir)/c", "--listen", "localhost"])
        #expect(cp.status == 64 && cp.output.contains("--listen=\"localhost\""), "\(cp.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(p.dir)/c"), "nothing created on bad flags")
    }

    @Test func aJoinTokenOnTmpfsIsRefused() throws {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        guard mounts.contains(" /dev/shm tmpfs ") else { return }  // no tmpfs to try it on
        let p = try MeshProcesses()
        defer { p.stop() }
        let token = "/dev/shm/meshwork-test-\(UUID().uuidString.prefix(8)).token"
        try MeshProcesses.writeSecret("mwt1.x", to: token)
        defer { try? FileManager.default.removeItem(atPath: token) }
        let r = try p.run(
            "mesh-sidecar",
            [
                "--service", "orders", "--control", "127.0.0.1:9", "--token-file", token, "--app", "127.0.0.1:1",
                "--data-dir", "\(p.dir)/d", "--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0", "--admin",
                "127.0.0.1:0",
            ])
        #expect(r.status == 1 && r.output.contains("is on tmpfs"), "\(r.output)")
    }

    @Test func enrolmentRefusalsAreSpecificAndTheControlPlaneKeepsServing() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let p = mesh.p
        func enrol(_ service: String, token: String) throws -> (Int32, String) {
            let file = "\(p.dir)/t-\(UUID().uuidString.prefix(6))"
            try MeshProcesses.writeSecret(token, to: file)
            let r = try p.run(
                "mesh-sidecar",
                [
                    "--service", service, "--control", mesh.control, "--token-file", file, "--app", "127.0.0.1:1",
                    "--data-dir", "\(p.dir)/d-\(UUID().uuidString.prefix(6))", "--inbound", "127.0.0.1:0", "--outbound",
                    "127.0.0.1:0",
                    "--admin", "127.0.0.1:0",
                ], timeout: 5)
            return (r.status, r.output)
        }
        let good = try mesh.token("orders")
        // Used once by a real sidecar, then refused as used up.
        let ordersApp = try p.startApp("orders", log: "orders-app.log")
        try MeshProcesses.writeSecret(good, to: "\(p.dir)/good.token")
        try p.start(
            "mesh-sidecar",
            [
                "--service", "orders", "--control", mesh.control, "--token-file", "\(p.dir)/good.token",
                "--app", "127.0.0.1:\(ordersApp)", "--data-dir", "\(p.dir)/orders", "--inbound", "127.0.0.1:0",
                "--outbound", "127.0.0.1:0",
                "--admin", "127.0.0.1:0",
            ], log: "orders.log")
        _ = try p.field("orders.log", "endpoint")

        var (status, out) = try enrol("orders", token: good)
        #expect(status == 1 && out.contains("token_used_up"), "\(out)")

        var parts = try mesh.token("orders").split(separator: ".").map(String.init)
        parts[2] = String(repeating: "a", count: 64)
        (status, out) = try enrol("orders", token: parts.joined(separator: "."))
        #expect(status == 1 && out.contains("token_forged"), "\(out)")

        (status, out) = try enrol("frontend", token: try mesh.token("orders"))
        #expect(status == 1 && out.contains("token_service_mismatch"), "\(out)")

        let revoked = try mesh.token("orders")
        let id = revoked.split(separator: ".")[1]
        let rv = try p.run("meshctl", ["token", "revoke", String(id)], env: mesh.meshctlEnv)
        #expect(rv.status == 0, "\(rv.output)")
        (status, out) = try enrol("orders", token: revoked)
        #expect(status == 1 && out.contains("token_revoked"), "\(out)")

        (status, out) = try enrol("orders", token: "mwt1.garbage")
        #expect(status != 0 && out.contains("malformed"), "\(out)")

        let expiring = try mesh.token("orders", extra: ["--ttl", "1s"])
        sleep(2)
        (status, out) = try enrol("orders", token: expiring)
        #expect(status == 1 && out.contains("token_expired"), "\(out)")

        // Still serving: a fresh token still enrols.
        let frontend = try mesh.sidecar("frontend", app: 1)
        let r = try mesh.curl(via: frontend.outbound, "http://orders/orders")
        #expect(r.output.hasPrefix("HTTP/1.1 200"), "\(r.output)")
        #expect(p.text("control.log").contains("enrolment refused"))
    }

    @Test func controlPlaneRefusesAWorldReadableOrCorruptCAKey() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        let data = "\(p.dir)/cp"
        // First start creates the CA; stop it.
        let first = try p.start(
            "mesh-control", ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"], log: "cp1.log")
        _ = try p.field("cp1.log", "address")
        first.terminate(); first.waitUntilExit()
        let key = "\(data)/ca/root.key"
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        chmod(key, 0o644)
        var r = try p.run("mesh-control", ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"], timeout: 10)
        #expect(r.status == 1 && r.output.contains("chmod 600"), "\(r.output)")

        chmod(key, 0o600)
        try "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".write(
            toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o600)
        r = try p.run("mesh-control", ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"], timeout: 10)
        #expect(r.status == 1 && r.output.contains("not a valid P-256 private key"), "\(r.output)")
    }

    @Test func garbageOnEveryPortCrashesNothing() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        // No health check: the app is down on purpose, and the instance is still served (to reach connect_failed).
        let sidecar = try mesh.sidecar("orders", app: 1, extra: ["--health-check", "none"])
        let script = """
            for target in "$@"; do h=${target%:*}; p=${target##*:}
              for i in 1 2 3; do head -c 4096 /dev/urandom | timeout 2 bash -c "cat > /dev/tcp/$h/$p" 2>/dev/null; done
              printf 'GET / HTTP/1.1\\r\\nHost: \\x00\\xff\\r\\n\\r\\n' | timeout 2 bash -c "cat > /dev/tcp/$h/$p" 2>/dev/null
              printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' | timeout 2 bash -c "cat > /dev/tcp/$h/$p" 2>/dev/null
              echo "sent $target"
            done
            """
        let r = try mesh.p.run(
            "/bin/bash", ["-c", script, "garbage", mesh.control, sidecar.inbound, sidecar.outbound, sidecar.admin],
            timeout: 60)
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.components(separatedBy: "sent ").count == 5, "garbage went to all four listeners: \(r.output)")
        #expect(mesh.controlProcess.isRunning, "control plane survived")
        let ready = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(sidecar.admin)/ready"])
        #expect(ready.output == "ready\n", "sidecar survived and is still ready: \(ready.output)")
        // An oversized header from the app is a 431 with a cause, not a generic 400.
        let big = try mesh.curl(
            via: sidecar.outbound, "http://orders/", ["-H", "x-big: \(String(repeating: "a", count: 70_000))"])
        #expect(big.output.hasPrefix("HTTP/1.1 431"), "\(big.output.prefix(200))")
        #expect(big.output.lowercased().contains("x-mesh-error: header_too_large"))
        // The sidecar still proxies: through its own outbound to its own inbound, where the app is down.
        let r2 = try mesh.curl(via: sidecar.outbound, "http://orders/")
        #expect(
            r2.output.hasPrefix("HTTP/1.1 502") && r2.output.lowercased().contains("x-mesh-error: connect_failed"),
            "\(r2.output)")
    }
}
