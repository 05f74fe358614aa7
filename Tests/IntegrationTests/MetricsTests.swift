import Foundation
import Testing

/// Both admin ports as Prometheus sees them: `promtool check metrics` on the sidecar's and the control plane's
/// `/metrics`, and a real Prometheus server scraping a running mesh every second and answering PromQL.
@Suite(.serialized) struct MetricsTests {
    @Test func bothAdminPortsPassPromtoolAndPrometheusAnswersARateQuery() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let orders = try mesh.backend("b1")
        let (caller, binds) = try mesh.caller(binding: ["orders"])
        let url = "http://\(binds["orders"]!)/orders"
        for _ in 0..<5 { _ = try mesh.p.run("/usr/bin/curl", ["-s", "--max-time", "5", url]) }
        // One sidecar-made error, so an error series with its cause exists too.
        _ = try mesh.curl(via: caller.outbound, "http://payments/x")

        // promtool: the exposition format of both admin ports.
        for (name, admin) in [
            ("sidecar", caller.admin), ("backend sidecar", orders.sidecar.admin), ("control", mesh.controlAdmin),
        ] {
            let text = try mesh.p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://\(admin)/metrics"]).output
            #expect(!text.isEmpty, "\(name): no metrics")
            let check = try mesh.p.run("/usr/bin/promtool", ["check", "metrics"], stdin: text)
            #expect(check.status == 0, "\(name): promtool check metrics: \(check.output)")
        }

        // The control plane's own metrics count what happened.
        let control = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(mesh.controlAdmin)/metrics"]).output
        #expect(Mesh.sum(control, "mesh_control_connected_sidecars") == 2, "\(control)")
        #expect(Mesh.sum(control, #"mesh_control_certificates_issued_total{via="join_token"}"#) == 2)
        // Updated once a second.
        var registered = 0.0
        for _ in 0..<30 where registered != 2 {
            registered = Mesh.sum(
                try mesh.p.run("/usr/bin/curl", ["-s", "http://\(mesh.controlAdmin)/metrics"]).output,
                "mesh_control_registered_instances")
            if registered != 2 { usleep(100_000) }
        }
        #expect(registered == 2)
        #expect(Mesh.sum(control, "mesh_control_policy_pushes_total") >= 2)
        #expect(Mesh.sum(control, #"mesh_control_store_operation_seconds_count{operation="latest"}"#) >= 1)
        for path in ["/ready", "/live"] {
            let r = try mesh.p.run(
                "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://\(mesh.controlAdmin)\(path)"])
            #expect(r.output == "200", "\(path): \(r.output)")
        }
        // A policy apply converges: the push, its ACKs, and the time until every sidecar had it.
        let before = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(mesh.controlAdmin)/metrics"]).output
        _ = try mesh.apply(
            """
            apiVersion: meshwork.dev/v1
            kind: Service
            metadata: {name: orders}
            spec: {protocol: http}
            """, waitFor: [orders.sidecar, caller], running: "Service/orders")
        var after = ""
        for _ in 0..<20 {
            after = try mesh.p.run("/usr/bin/curl", ["-s", "http://\(mesh.controlAdmin)/metrics"]).output
            if Mesh.sum(after, "mesh_control_policy_ack_seconds_count")
                >= Mesh.sum(before, "mesh_control_policy_ack_seconds_count") + 2
            {
                break
            }
            usleep(100_000)
        }
        #expect(
            Mesh.sum(after, "mesh_control_policy_convergence_seconds_count")
                == Mesh.sum(before, "mesh_control_policy_convergence_seconds_count") + 1, "\(after)")
        #expect(
            Mesh.sum(after, "mesh_control_policy_ack_seconds_count")
                == Mesh.sum(before, "mesh_control_policy_ack_seconds_count") + 2)
        #expect(
            Mesh.sum(after, "mesh_control_policy_pushes_total") == Mesh.sum(before, "mesh_control_policy_pushes_total")
                + 2)
        #expect(Mesh.sum(after, "mesh_control_policy_version") >= 1)

        // A real Prometheus, scraping every second.
        let port = try MeshProcesses.freePort()
        let config = """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            scrape_configs:
              - job_name: sidecars
                static_configs: [{targets: ["\(caller.admin)", "\(orders.sidecar.admin)"]}]
              - job_name: control
                static_configs: [{targets: ["\(mesh.controlAdmin)"]}]
            """
        try config.write(toFile: "\(mesh.p.dir)/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try mesh.p.start(
            "/usr/bin/prometheus",
            [
                "--config.file=\(mesh.p.dir)/prometheus.yml", "--storage.tsdb.path=\(mesh.p.dir)/tsdb",
                "--web.listen-address=127.0.0.1:\(port)",
            ], log: "prometheus.log")
        defer { kill(prometheus.processIdentifier, SIGKILL) }
        try mesh.p.waitForPort(port, timeout: 30)
        // Load for a while (bounded: 20 a second for 8 s), so the rate has samples to work on.
        let load = try mesh.paced("http://orders/orders", via: caller.outbound, count: 160, rate: 20)
        #expect(load.statuses()["200"] == 160, "\(load)")
        let query =
            #"sum(rate(mesh_http_requests_total{direction="outbound",peer_service="orders",status_class="2xx"}[5s]))"#
        var rate = 0.0
        let deadline = Date().addingTimeInterval(20)
        while rate <= 0, Date() < deadline {
            let r = try mesh.p.run(
                "/usr/bin/curl",
                [
                    "-s", "--max-time", "5", "-G", "http://127.0.0.1:\(port)/api/v1/query", "--data-urlencode",
                    "query=\(query)",
                ])
            let object = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
            let result = ((object?["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
            rate = ((result?["value"] as? [Any])?.last as? String).flatMap(Double.init) ?? 0
            if rate <= 0 { usleep(500_000) }
        }
        #expect(rate > 0, "PromQL \(query) gave no rate: \(mesh.p.text("prometheus.log").suffix(2000))")
        // The control plane is scraped too.
        let up = try mesh.p.run(
            "/usr/bin/curl",
            [
                "-s", "-G", "http://127.0.0.1:\(port)/api/v1/query", "--data-urlencode",
                "query=mesh_control_connected_sidecars",
            ])
        #expect(up.output.contains("\"2\""), "\(up.output)")
    }
}
