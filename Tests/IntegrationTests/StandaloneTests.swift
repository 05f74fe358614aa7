import Foundation
import Testing

/// Standalone mode with an outside PKI made by openssl: identity from files (reloaded when they change),
/// static endpoints, no control plane anywhere.
@Suite(.serialized)
struct StandaloneTests {
    /// A CA and SPIFFE leaves made by openssl, as a user's own PKI would.
    struct OpenSSLPKI {
        let p: MeshProcesses
        var dir: String { p.dir }

        init(_ p: MeshProcesses) throws {
            self.p = p
            try sh(
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 "
                    + "-subj /CN=outside-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
            )
        }

        func leaf(_ service: String, name: String) throws {
            try sh(
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout \(name).key.new -out \(name).csr -subj /CN=\(service) && "
                    + "printf 'subjectAltName=URI:spiffe://mesh.local/svc/\(service)\\nbasicConstraints=CA:FALSE\\nkeyUsage=digitalSignature\\nextendedKeyUsage=serverAuth,clientAuth\\n' > \(name).ext && "
                    + "openssl x509 -req -in \(name).csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out \(name).pem.new -extfile \(name).ext && "
                    + "chmod 600 \(name).key.new && mv \(name).key.new \(name).key && mv \(name).pem.new \(name).pem")
        }

        @discardableResult
        func sh(_ command: String) throws -> String {
            let r = try p.run("/bin/bash", ["-c", "cd \(dir) && \(command)"])
            guard r.status == 0 else { throw TestFailure("\(command): \(r.output)") }
            return r.output
        }
    }

    @Test func twoStandaloneSidecarsTalkMTLSAndReloadRotatedFiles() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        let pki = try OpenSSLPKI(p)
        try pki.leaf("orders", name: "orders")
        try pki.leaf("frontend", name: "frontend")
        let ordersApp = try p.startApp("orders", log: "orders-app.log")
        func sidecar(_ service: String, app: Int, extra: [String]) throws -> (
            inbound: String, outbound: String, admin: String
        ) {
            let log = "\(service)-sidecar.log"
            try p.start(
                "mesh-sidecar",
                [
                    "--service", service, "--app", "127.0.0.1:\(app)", "--cert", "\(p.dir)/\(service).pem",
                    "--key", "\(p.dir)/\(service).key", "--bundle", "\(p.dir)/ca.pem", "--inbound", "127.0.0.1:0",
                    "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                ] + extra, log: log)
            return (try p.field(log, "inbound"), try p.field(log, "outbound"), try p.field(log, "admin"))
        }
        let orders = try sidecar("orders", app: ordersApp, extra: [])
        let frontend = try sidecar("frontend", app: 1, extra: ["--endpoint", "orders=\(orders.inbound)"])

        func curl(_ url: String) throws -> String {
            try p.run(
                "/usr/bin/curl", ["-s", "-i", "--max-time", "10", url],
                env: ["http_proxy": "http://\(frontend.outbound)"]
            ).output
        }
        let ok = try curl("http://orders/orders")
        #expect(ok.hasPrefix("HTTP/1.1 200"), "\(ok)")
        #expect(ok.contains("spiffe://mesh.local/svc/frontend"), "orders saw the verified caller")
        let unknown = try curl("http://billing/")
        #expect(
            unknown.hasPrefix("HTTP/1.1 503") && unknown.lowercased().contains("x-mesh-error: unknown_service"),
            "\(unknown)")
        #expect(try p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/ready"]).output == "ready\n")

        // The outside agent rotates frontend's certificate: the sidecar picks it up without a restart.
        let before = try p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/certs"]).output
        try pki.leaf("frontend", name: "frontend")
        let newSerial =
            try pki.sh("openssl x509 -in frontend.pem -noout -serial").split(separator: "=").last.map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            } ?? ""
        let deadline = Date().addingTimeInterval(10)
        var after = before
        while Date() < deadline && !after.contains(newSerial) {
            usleep(200_000)
            after = try p.run("/usr/bin/curl", ["-s", "http://\(frontend.admin)/certs"]).output
        }
        #expect(after.contains(newSerial), "reloaded: \(after)")
        #expect(try curl("http://orders/orders").hasPrefix("HTTP/1.1 200"), "traffic after the reload")

        // A broken rewrite is refused and the working identity kept.
        try pki.sh("echo garbage > frontend.pem")
        usleep(2_500_000)
        #expect(p.text("frontend-sidecar.log").contains("cannot be used; keeping the current identity"))
        #expect(try curl("http://orders/orders").hasPrefix("HTTP/1.1 200"))
    }
}
