import Foundation
import Testing

/// Policy push end to end: sidecars receive their slice, ACK it, and `meshctl apply --wait` returns once all
/// have it; a sidecar that cannot apply a version NACKs it with the reason and keeps the last good one; a
/// sidecar restarted while the control plane is down starts from the policy it persisted.
@Suite(.serialized)
struct PolicyPushTests {
    func policy(_ mesh: Mesh, _ sidecar: Mesh.Sidecar) throws -> (version: Int, documents: [String]) {
        let p = try mesh.config(sidecar)["policy"] as? [String: Any] ?? [:]
        return (p["version"] as? Int ?? -1, p["documents"] as? [String] ?? [])
    }

    @Test func sidecarsReceiveTheirSliceAckAndNack() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let app = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: app)
        let (caller, _) = try mesh.caller(binding: ["orders"])
        func meshctl(_ args: [String]) throws -> (status: Int32, output: String) {
            try mesh.p.run("meshctl", args, env: mesh.meshctlEnv, timeout: 60)
        }
        // Both sidecars are connected (they ACKed version 0) before the apply.
        #expect(try meshctl(["status", "--wait", "10s"]).output.contains("applied by 2 of 2"))

        let applied = try meshctl(["apply", "-f", "\(MeshProcesses.packageRoot)/policies", "--wait"])
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.output.contains("version 1: applied by 2 of 2 connected sidecars"), "\(applied.output)")

        // Each got only what it needs: orders its inbound policy (its TrafficPolicy for the rate limits), the caller
        // the policy of what it calls.
        let o = try policy(mesh, orders)
        #expect(
            o.version == 1 && o.documents == ["Service/orders", "TrafficPolicy/orders", "AuthorizationPolicy/orders"],
            "\(o)")
        let c = try policy(mesh, caller)
        #expect(c.version == 1 && c.documents == ["Service/orders", "TrafficPolicy/orders"], "\(c)")

        // Making orders a TCP service while its TrafficPolicy splits requests: refused at apply (its sidecars could
        // not split bytes).
        let service = { (proto: String) in
            "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: orders}\nspec:\n  protocol: \(proto)\n  subsets: [{name: stable, labels: {track: stable}}, {name: canary, labels: {track: canary}}]\n"
        }
        let tcp = "\(mesh.p.dir)/tcp.yaml"
        try service("tcp").write(toFile: tcp, atomically: true, encoding: .utf8)
        let invalid = try meshctl(["apply", "-f", tcp])
        #expect(invalid.status != 0 && invalid.output.contains("spec.split: TrafficPolicy/orders splits requests"))

        // A version the orders sidecar cannot apply: it says why and keeps version 1.
        let http2 = "\(mesh.p.dir)/http2.yaml"
        try service("http2").write(toFile: http2, atomically: true, encoding: .utf8)
        let refused = try meshctl(["apply", "-f", http2, "--wait", "--timeout", "20s"])
        #expect(refused.status == 1, "apply --wait fails when a sidecar rejects: \(refused.output)")
        #expect(refused.output.contains("version 2: applied by 1 of 2"), "\(refused.output)")
        #expect(
            refused.output.contains(
                "rejected by orders@\(orders.inbound) (runs 1): version 2: Service orders declares protocol http2"),
            "\(refused.output)")
        #expect(try policy(mesh, orders).version == 1, "the last good version stays in force")
        #expect(try policy(mesh, caller).version == 2)
        let status = try meshctl(["status", "-o", "json"])
        #expect(status.status == 1 && status.output.contains("\"converged\":false"), "\(status.output)")
        #expect(mesh.p.text(orders.log).contains("policy version refused; keeping the last good one"))

        // Fixing it converges everyone.
        #expect(try meshctl(["rollback", "1"]).status == 0)
        #expect(try meshctl(["status", "--wait", "20s"]).output.contains("version 3: applied by 2 of 2"))
        #expect(try policy(mesh, orders).version == 3)
    }

    @Test func aRestartedSidecarServesWithItsPersistedPolicyWhileTheControlPlaneIsDown() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let app = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: app)
        let applied = try mesh.p.run(
            "meshctl", ["apply", "-f", "\(MeshProcesses.packageRoot)/policies", "--wait"], env: mesh.meshctlEnv,
            timeout: 60)
        #expect(applied.status == 0, "\(applied.output)")
        let file = "\(orders.dataDir)/policy.json"
        let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600, "policy.json is private: \(String(describing: mode))")

        mesh.controlProcess.terminate()
        mesh.controlProcess.waitUntilExit()
        orders.process.terminate()
        orders.process.waitUntilExit()
        let token = try FileManager.default.contentsOfDirectory(atPath: mesh.p.dir).first {
            $0.hasPrefix("orders-") && $0.hasSuffix(".token")
        }!
        _ = try mesh.p.start(
            "mesh-sidecar",
            [
                "--service", "orders", "--control", mesh.control, "--token-file", "\(mesh.p.dir)/\(token)",
                "--app", "127.0.0.1:\(app)", "--data-dir", orders.dataDir, "--inbound", "127.0.0.1:0", "--outbound",
                "127.0.0.1:0", "--admin", "127.0.0.1:0",
            ], log: "orders-restarted.log")
        let admin = try mesh.p.field("orders-restarted.log", "admin")
        let restarted = Mesh.Sidecar(
            inbound: "", outbound: "", admin: admin, dataDir: orders.dataDir, process: orders.process,
            log: "orders-restarted.log")
        let p = try policy(mesh, restarted)
        #expect(p.version == 1 && p.documents.contains("AuthorizationPolicy/orders"), "\(p)")
        #expect(mesh.p.text("orders-restarted.log").contains("last known good policy loaded"))
    }
}
