import Foundation
import MeshControlClient
import MeshCore
import MeshIdentity
import Testing

/// One compromised workload (a real certificate of its service, enrolled with a join token) tries to flood
/// its service's endpoint list over one connection, with oversized hosts and labels, and reaches for another
/// service's instance.
@Suite(.serialized) struct RegistrationLimitTests {
    @Test func aRegistrationFloodIsRefusedWithReasonsAndOtherServicesNeverNotice() async throws {
        let mesh = try Mesh(controlFlags: ["--max-instances-per-service", "2"])
        defer { mesh.stop() }
        let p = mesh.p
        let orders = try mesh.sidecar("orders", app: try p.startApp("orders", log: "orders-app.log"))
        _ = try mesh.sidecar("billing", app: try p.startApp("billing", log: "billing-app.log"))
        let (_, binds) = try mesh.caller(binding: ["orders", "billing"])
        let control = try HostPort(parsing: mesh.control)
        func rogueSession(_ service: String) async throws -> ControlPlaneSession {
            let identity = try await Enrolment.certify(
                control: control, token: try JoinToken(parsing: try mesh.token(service)),
                service: try ServiceName(service), trustDomain: .default)
            return ControlPlaneSession(control: control) { identity }
        }
        /// One registration of `orders` over `session`: "ok" or the refusal's `mesh-reason`.
        func register(
            _ session: ControlPlaneSession, _ host: String, _ port: Int, _ service: String = "orders",
            labels: [String: String] = [:]
        ) async -> String {
            do {
                _ = try await DiscoveryClient.register(
                    session: session, service: try ServiceName(service), advertise: HostPort(host: host, port: port),
                    labels: labels)
                return "ok"
            } catch let error as ControlPlaneError {
                return error.reason ?? "\(error.code)"
            } catch {
                return "\(error)"
            }
        }

        // Callers of another service keep calling it all along.
        let done = LockedFlag()
        let failures = LockedCounter()
        let failed = LockedLines()
        let sent = LockedCounter()
        let traffic = Thread {
            while !done.isSet {
                sent.add()
                let r = try? p.run(
                    "/usr/bin/curl", ["-s", "-i", "--max-time", "5", "http://\(binds["billing"]!)/healthz"])
                if r?.output.hasPrefix("HTTP/1.1 200") != true {
                    failures.add()
                    failed.append(String((r?.output ?? "curl did not run").prefix(300)))
                }
                usleep(50_000)
            }
        }
        traffic.start()
        defer {
            done.set()
            while !traffic.isFinished { usleep(20_000) }
        }

        let rogue = try await rogueSession("orders")
        let running = Task { await rogue.run() }
        defer {
            rogue.close()
            running.cancel()
        }
        #expect(await register(rogue, String(repeating: "a", count: 10_000), 8080) == "invalid_endpoint")
        #expect(await register(rogue, "a host with spaces", 8080) == "invalid_endpoint")
        #expect(await register(rogue, "127.0.0.1", 0) == "invalid_endpoint")
        let manyLabels = Dictionary(uniqueKeysWithValues: (0..<17).map { ("k\($0)", "v") })
        #expect(await register(rogue, "127.0.0.1", 8080, labels: manyLabels) == "invalid_endpoint")
        #expect(
            await register(rogue, "127.0.0.1", 8080, labels: ["k": String(repeating: "v", count: 1000)])
                == "invalid_endpoint")
        var outcomes: [String: Int] = [:]
        for i in 0..<1000 { outcomes[await register(rogue, "127.0.0.1", 20000 + i), default: 0] += 1 }
        #expect(outcomes == ["ok": 1, "connection_instance_limit": 999], "\(outcomes)")
        // Another connection with the same identity: the service is at its cap (its real instance and one).
        let second = try await rogueSession("orders")
        let secondRunning = Task { await second.run() }
        defer {
            second.close()
            secondRunning.cancel()
        }
        #expect(await register(second, "127.0.0.1", 30000) == "service_instance_limit")
        // A renewal is never refused, and no other service can renew or remove orders' instance.
        #expect(await register(rogue, "127.0.0.1", 20000) == "ok")
        let billingRogue = try await rogueSession("billing")
        let billingRunning = Task { await billingRogue.run() }
        defer {
            billingRogue.close()
            billingRunning.cancel()
        }
        let ordersInbound = try HostPort(parsing: orders.inbound)
        #expect(await register(billingRogue, ordersInbound.host, ordersInbound.port, "orders") == "permissionDenied")
        try await DiscoveryClient.deregister(
            session: billingRogue, service: try ServiceName("billing"), advertise: ordersInbound)
        // What callers of orders can pick: its real instance and the one the cap let through, nothing more.
        let (snapshots, yield) = AsyncStream.makeStream(of: [HostPort].self)
        let watch = Task {
            try await DiscoveryClient.watch(session: rogue, service: try ServiceName("orders")) {
                yield.yield($0.endpoints.map(\.address))
            }
        }
        var iterator = snapshots.makeAsyncIterator()
        let watched = await iterator.next() ?? []
        watch.cancel()
        #expect(Set(watched.map(\.description)) == [orders.inbound, "127.0.0.1:20000"], "\(watched)")
        try await DiscoveryClient.deregister(
            session: rogue, service: try ServiceName("orders"), advertise: HostPort(host: "127.0.0.1", port: 20000))

        done.set()
        while !traffic.isFinished { usleep(20_000) }
        #expect(
            sent.value > 10 && failures.value == 0,
            "billing's callers: \(failures.value) of \(sent.value) failed: \(failed.all.prefix(3))")
        // Refusals are counted in a few log lines (one a second at most), never echoing a 10,000-character host.
        usleep(1_500_000)
        var logged: [String: Int] = [:]
        for line in p.text("control.log").split(separator: "\n") where line.contains("registrations refused") {
            #expect(line.utf8.count < 1000)
            let fields = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            for (key, value) in fields { if let n = Int(value as? String ?? "") { logged[key, default: 0] += n } }
        }
        #expect(logged["invalid_endpoint"] == 5 && logged["connection_instance_limit"] == 999, "\(logged)")
        #expect(logged["service_instance_limit"] == 1, "\(logged)")
    }
}
