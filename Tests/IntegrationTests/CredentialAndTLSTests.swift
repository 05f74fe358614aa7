import Foundation
import Testing

/// TLS 1.3 only on every mTLS port, credentials readable by their owner only, and requests too big for the
/// API refused by meshctl before they are sent.
@Suite(.serialized) struct CredentialAndTLSTests {
    @Test func tls12IsRefusedOnEveryMTLSPortAndTLS13Accepted() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let p = mesh.p
        let orders = try mesh.sidecar("orders", app: try p.startApp("orders", log: "orders-app.log"))
        // A valid workload certificate, so that only the protocol version can make the handshake fail.
        let client = ["-cert", "\(orders.dataDir)/cert.pem", "-key", "\(orders.dataDir)/key.pem"]
        for (name, address) in [("control plane", mesh.control), ("sidecar inbound", orders.inbound)] {
            // CBC-SHA1 over TLS 1.2, the suite the control plane once accepted (LUCKY13).
            let old = try p.run(
                "/usr/bin/openssl",
                ["s_client", "-connect", address, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", "-alpn", "h2"]
                    + client, stdin: "", timeout: 15)
            #expect(old.status != 0, "\(name): TLS 1.2 refused: \(old.output)")
            #expect(old.output.contains("protocol version"), "\(name): \(old.output)")
            #expect(!old.output.contains("Protocol  : TLSv1.2\n    Cipher    : ECDHE"), "\(name): no TLS 1.2 session")
            let current = try p.run(
                "/usr/bin/openssl", ["s_client", "-connect", address, "-tls1_3", "-alpn", "h2"] + client, stdin: "",
                timeout: 15)
            #expect(current.output.contains("TLSv1.3"), "\(name): TLS 1.3 works: \(current.output)")
            #expect(current.output.contains("ALPN protocol: h2"), "\(name)")
            // TLS 1.3 without a client certificate: refused (the server asks for one and requires it).
            let anonymous = try p.run(
                "/usr/bin/openssl", ["s_client", "-connect", address, "-tls1_3", "-alpn", "h2", "-ign_eof"], stdin: "",
                timeout: 15)
            #expect(anonymous.output.contains("certificate required"), "\(name): \(anonymous.output)")
        }
    }

    @Test func credentialsReadableByOthersAreRefusedWithTheFix() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let p = mesh.p
        // meshctl: its config holds the admin key.
        let config = "\(p.dir)/control/admin/meshctl.yaml"
        chmod(config, 0o644)
        var r = try p.run("meshctl", ["history"], env: mesh.meshctlEnv)
        #expect(r.status == 64 && r.output.contains("chmod 600 \(config)"), "\(r.output)")
        chmod(config, 0o600)
        #expect(try p.run("meshctl", ["history"], env: mesh.meshctlEnv).status == 0)
        // mesh-sidecar: a join token file.
        let token = "\(p.dir)/orders.token"
        try MeshProcesses.writeSecret(try mesh.token("orders"), to: token)
        chmod(token, 0o644)
        r = try p.run(
            "mesh-sidecar",
            [
                "--service", "orders", "--control", mesh.control, "--token-file", token, "--app", "127.0.0.1:1",
                "--data-dir", "\(p.dir)/orders", "--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0", "--admin",
                "127.0.0.1:0",
            ], timeout: 15)
        #expect(r.status == 1 && r.output.contains("chmod 600 \(token)"), "\(r.output)")
        // mesh-control: tokens.json (every unused join token).
        mesh.controlProcess.terminate()
        mesh.controlProcess.waitUntilExit()
        let tokens = "\(p.dir)/control/tokens.json"
        #expect(FileManager.default.fileExists(atPath: tokens))
        chmod(tokens, 0o644)
        r = try p.run("mesh-control", ["serve", "--data-dir", "\(p.dir)/control", "--listen", "127.0.0.1:0"])
        #expect(r.status == 1 && r.output.contains("chmod 600 \(tokens)"), "\(r.output)")
    }

    @Test func meshctlRefusesWhatTheAPIWouldDropAndSaysWhy() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let p = mesh.p
        let big = "\(p.dir)/big-name.yaml"
        try
            "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata:\n  name: \(String(repeating: "a", count: 1_048_576))\nspec: {}\n"
            .write(toFile: big, atomically: true, encoding: .utf8)
        var r = try p.run("meshctl", ["apply", "--dry-run", "-f", big], env: mesh.meshctlEnv)
        #expect(r.status == 1, "\(r.output.prefix(300))")
        #expect(r.output.contains("metadata.name") && r.output.contains("(1048576 bytes)"), "\(r.output.prefix(300))")
        #expect(r.output.utf8.count < 1000, "the name is not echoed whole (the control plane answers in one line)")
        #expect(!r.output.contains("cannot reach"))
        let huge = "\(p.dir)/huge.yaml"
        let comments = String(repeating: "# " + String(repeating: "x", count: 1000) + "\n", count: 5000)
        try "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata:\n  name: orders\nspec: {}\n\(comments)"
            .write(toFile: huge, atomically: true, encoding: .utf8)
        r = try p.run("meshctl", ["apply", "--dry-run", "-f", huge], env: mesh.meshctlEnv)
        #expect(r.status == 64 && r.output.contains("at most 4.0 MiB"), "\(r.output)")
        r = try p.run("meshctl", ["get", "service", String(repeating: "a", count: 20_000)], env: mesh.meshctlEnv)
        #expect(
            r.status == 64 && r.output.contains("(20000 bytes) must be 1...63 characters"), "\(r.output.prefix(300))")
    }
}
