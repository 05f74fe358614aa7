import Foundation
import Testing

/// The vertical slice with real processes: control plane, two sidecars, demo apps, curl and openssl.
@Suite(.serialized)
struct MeshSliceTests {
    static let request = "GET /orders HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n"

    @Test func requestCrossesTwoSidecarsOverVerifiedMTLS() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        _ = try mesh.sidecar("orders", app: ordersApp)
        let frontend = try mesh.sidecar("frontend", app: 1)

        let r = try mesh.curl(via: frontend.outbound, "http://orders/orders")
        #expect(r.output.hasPrefix("HTTP/1.1 200"), "\(r.output)")
        #expect(
            r.output.contains("\"caller\": \"spiffe://mesh.local/svc/frontend\""),
            "orders app must see the verified caller")
        #expect(r.output.lowercased().contains("x-mesh-upstream-identity: spiffe://mesh.local/svc/orders"))

        // Keep-alive on both hops: three requests on one client connection, one connect.
        let multi = try mesh.p.run(
            "/usr/bin/curl",
            [
                "-s", "-w", "%{http_code}:%{num_connects} ",
                "-o", "/dev/null", "http://orders/orders", "-o", "/dev/null", "http://orders/orders", "-o", "/dev/null",
                "http://orders/orders",
            ], env: ["http_proxy": "http://\(frontend.outbound)"])
        #expect(multi.output.trimmingCharacters(in: .whitespaces) == "200:1 200:0 200:0", "\(multi.output)")

        // A service nobody registered is a specific 503, not a hang.
        let unknown = try mesh.curl(via: frontend.outbound, "http://payments/x")
        #expect(unknown.output.hasPrefix("HTTP/1.1 503"), "\(unknown.output)")
        #expect(unknown.output.lowercased().contains("x-mesh-error: unknown_service"))

        // The admin endpoint reports the identity and its expiry.
        let certs = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/certs"])
        #expect(certs.output.contains("\"identity\":\"spiffe://mesh.local/svc/frontend\""), "\(certs.output)")

        // Metrics count what happened, with fixed label sets.
        let metrics = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/metrics"]).output
        // Per peer: the requests to orders under its name; the unknown name is not made a label.
        #expect(
            Mesh.sum(metrics, #"mesh_http_requests_total{direction="outbound",status_class="2xx"}"#) == 4, "\(metrics)")
        #expect(
            metrics.contains(
                #"mesh_proxy_errors_total{direction="outbound",peer_service="unknown",cause="unknown_service"} 1"#))
        #expect(!metrics.contains(#"peer_service="payments""#))
        #expect(metrics.contains("mesh_http_request_duration_seconds_bucket"))
        #expect(metrics.contains("mesh_identity_expiry_timestamp_seconds"))
        // /config shows the destinations in use; /loglevel changes the level at run time.
        let config = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/config"]).output
        #expect(config.contains(#""service":"frontend""#) && config.contains(#""orders":{"known":true"#), "\(config)")
        let set = try mesh.p.run("/usr/bin/curl", ["-s", "-X", "PUT", "http://\(frontend.admin)/loglevel?level=debug"])
            .output
        #expect(set == "debug\n")
        #expect(try mesh.p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/loglevel"]).output == "debug\n")

        // SIGTERM stops the control plane promptly even with sidecars watching it; they keep serving.
        mesh.controlProcess.terminate()
        let deadline = Date().addingTimeInterval(10)
        while mesh.controlProcess.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!mesh.controlProcess.isRunning, "mesh-control must exit on SIGTERM within 10 s")
        let during = try mesh.curl(via: frontend.outbound, "http://orders/orders")
        #expect(
            during.output.hasPrefix("HTTP/1.1 200"),
            "traffic keeps flowing while the control plane is down: \(during.output)")
    }

    @Test func inboundAcceptsOnlyMeshCertificatesOverTLS13() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: ordersApp)
        let frontend = try mesh.sidecar("frontend", app: 1)
        let dir = mesh.p.dir
        // A certificate from another CA that claims a mesh identity.
        let forged = try mesh.p.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "\(dir)/other.key",
                "-out", "\(dir)/other.pem", "-days", "1", "-subj", "/CN=other", "-addext",
                "subjectAltName=URI:spiffe://mesh.local/svc/frontend",
            ])
        #expect(forged.status == 0, "\(forged.output)")

        func probe(_ extra: [String]) throws -> String {
            try mesh.p.run(
                "/usr/bin/openssl", ["s_client", "-connect", orders.inbound, "-quiet"] + extra, stdin: Self.request,
                timeout: 15
            ).output
        }
        // Positive control: the frontend's own certificate gets through to the app.
        let ok = try probe(["-tls1_3", "-cert", "\(frontend.dataDir)/cert.pem", "-key", "\(frontend.dataDir)/key.pem"])
        #expect(ok.contains("HTTP/1.1 200"), "mesh certificate must be accepted: \(ok)")
        #expect(ok.contains("spiffe://mesh.local/svc/frontend"))

        let noCert = try probe(["-tls1_3"])
        #expect(!noCert.contains("HTTP/1.1"), "no client certificate must be refused: \(noCert)")
        let otherCA = try probe(["-tls1_3", "-cert", "\(dir)/other.pem", "-key", "\(dir)/other.key"])
        #expect(!otherCA.contains("HTTP/1.1"), "a certificate from another CA must be refused: \(otherCA)")
        let tls12 = try probe([
            "-tls1_2", "-cert", "\(frontend.dataDir)/cert.pem", "-key", "\(frontend.dataDir)/key.pem",
        ])
        #expect(!tls12.contains("HTTP/1.1"), "TLS 1.2 must be refused: \(tls12)")
        #expect(tls12.lowercased().contains("alert") || tls12.lowercased().contains("error"), "\(tls12)")
        let metrics = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(orders.admin)/metrics"]).output
        // Counted by reason: no certificate, another CA, TLS 1.2.
        let failures = metrics.split(separator: "\n").filter { $0.hasPrefix("mesh_tls_handshake_failures_total") }
        #expect(Mesh.sum(metrics, #"mesh_tls_handshake_failures_total{direction="inbound"}"#) >= 3, "\(failures)")
        for reason in ["no_certificate", "untrusted_certificate", "protocol_mismatch"] {
            #expect(
                Mesh.sum(metrics, #"mesh_tls_handshake_failures_total{direction="inbound",reason="\#(reason)"}"#) >= 1,
                "\(reason): \(failures)")
        }
    }

    @Test func outboundRefusesAPeerWithTheWrongIdentity() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let frontend = try mesh.sidecar("frontend", app: 1)
        // "billing" advertises a TLS server holding frontend's certificate: whoever dials billing meets a frontend
        // identity. (Advertising frontend's own inbound address is refused: an address serves one service.)
        let impostor = try MeshProcesses.freePort()
        try mesh.p.start(
            "/usr/bin/openssl",
            [
                "s_server", "-accept", "127.0.0.1:\(impostor)", "-cert", "\(frontend.dataDir)/cert.pem", "-key",
                "\(frontend.dataDir)/key.pem", "-tls1_3", "-quiet", "-naccept", "100",
            ], log: "impostor.log")
        try mesh.p.waitForPort(impostor)
        _ = try mesh.sidecar(
            "billing", app: 1, extra: ["--advertise", "127.0.0.1:\(impostor)", "--health-check", "none"])
        let caller = try mesh.sidecar("caller", app: 1)
        let r = try mesh.curl(via: caller.outbound, "http://billing/")
        #expect(r.output.hasPrefix("HTTP/1.1 502"), "\(r.output)")
        #expect(r.output.lowercased().contains("x-mesh-error: tls_peer_identity_mismatch"), "\(r.output)")
    }
}
