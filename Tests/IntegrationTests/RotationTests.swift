import Foundation
import Testing

/// Certificates rotating every few seconds under continuous load: no request fails, and new handshakes
/// present the new certificate.
@Suite(.serialized)
struct RotationTests {
    @Test func rotationUnderLoadFailsNoRequest() throws {
        let mesh = try Mesh(controlFlags: ["--cert-ttl", "10s"])
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: ordersApp)
        let frontend = try mesh.sidecar("frontend", app: 1)
        let firstSerial = try serial(mesh, orders.admin)

        // Bounded load: 4 parallel clients, up to 20 s or 6000 requests in all, through both sidecars.
        let load = """
            end=$(( $(date +%s) + 20 )); n=0
            while [ $(date +%s) -lt $end ] && [ $n -lt 1500 ]; do
              curl -s -o /dev/null -w '%{http_code}\\n' --max-time 5 http://orders/orders; n=$((n+1))
            done
            """
        let script = "for i in 1 2 3 4; do ( \(load) ) & done; wait"
        let r = try mesh.p.run(
            "/bin/bash", ["-c", script], env: ["http_proxy": "http://\(frontend.outbound)"], timeout: 60)
        let codes = r.output.split(separator: "\n")
        let failures = codes.filter { $0 != "200" }
        #expect(codes.count > 200, "the load ran: \(codes.count) requests")
        #expect(failures.isEmpty, "\(failures.count) of \(codes.count) requests failed: \(Set(failures))")

        // Both sidecars rotated at least twice in 20 s (renewal at 60–90 % of 10 s).
        let renewals = mesh.p.text(try logName(mesh, "orders")).components(separatedBy: "certificate renewed").count - 1
        #expect((2...8).contains(renewals), "orders renewed \(renewals) times (expected every 6–9 s)")
        print(
            "rotation under load: \(codes.count) requests, \(failures.count) failed, orders renewed \(renewals) times")
        // Renewal moved the sidecar to a connection presenting the new certificate; the old one is gone by
        // the time that certificate expires (at most the current one and one retiring).
        let connections = try mesh.controlConnections(from: frontend.process)
        #expect((1...2).contains(connections), "frontend's connections to the control plane: \(connections)")
        let newSerial = try serial(mesh, orders.admin)
        #expect(newSerial != firstSerial)
        // A brand-new handshake with the orders sidecar presents the certificate /certs reports now.
        let presented = try mesh.p.run(
            "/bin/bash",
            [
                "-c",
                "openssl s_client -connect \(orders.inbound) -tls1_3 </dev/null 2>/dev/null | openssl x509 -noout -serial",
            ])
        let current = try serial(mesh, orders.admin)
        #expect(
            presented.output.lowercased().contains(current.lowercased()),
            "presented \(presented.output), /certs \(current)")
    }

    func serial(_ mesh: Mesh, _ admin: String) throws -> String {
        let certs = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(admin)/certs"]).output
        guard let r = certs.range(of: "\"serial\":\"") else { throw TestFailure("no serial in \(certs)") }
        return String(certs[r.upperBound...].prefix { $0 != "\"" })
    }

    func logName(_ mesh: Mesh, _ service: String) throws -> String {
        let logs = try FileManager.default.contentsOfDirectory(atPath: mesh.p.dir).filter {
            $0.hasPrefix("\(service)-sidecar-")
        }
        guard let log = logs.first else { throw TestFailure("no \(service) sidecar log") }
        return log
    }
}
