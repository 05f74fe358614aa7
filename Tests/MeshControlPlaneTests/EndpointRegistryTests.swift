import MeshCore
import Testing

@testable import MeshControlPlane

@Suite struct EndpointRegistryTests {
    @Test func watchersSeeUnknownThenEveryChange() async throws {
        let registry = EndpointRegistry()
        let orders = try ServiceName("orders")
        let (id, stream) = await registry.watch(orders)
        var updates = stream.makeAsyncIterator()
        let first = await updates.next()
        #expect(first?.known == false && first?.endpoints.isEmpty == true)
        try await registry.register(
            orders,
            RegisteredEndpoint(host: "10.0.0.1", port: 15006, identity: "spiffe://mesh.local/svc/orders", labels: [:]),
            registrant: "a")
        let second = await updates.next()
        #expect(second?.known == true && second?.endpoints.count == 1 && second?.revision == 1)
        await registry.deregister(orders, key: "10.0.0.1:15006")
        let third = await updates.next()
        #expect(
            third?.known == true && third?.endpoints.isEmpty == true, "known with zero endpoints differs from unknown")
    }

    @Test func aSlowWatcherGetsOnlyTheLatestSnapshot() async throws {
        let registry = EndpointRegistry()
        let orders = try ServiceName("orders")
        var updates = await registry.watch(orders).updates.makeAsyncIterator()
        for port in 1...50 {
            try await registry.register(
                orders,
                RegisteredEndpoint(
                    host: "10.0.0.1", port: port, identity: "spiffe://mesh.local/svc/orders", labels: [:]),
                registrant: "sidecar-\(port)")
        }
        let next = await updates.next()
        #expect(next?.revision == 50 && next?.endpoints.count == 50)
    }

    @Test func leasesLapseAndUnhealthyInstancesAreNotServed() async throws {
        let registry = EndpointRegistry(leaseTTL: .seconds(10))
        let orders = try ServiceName("orders")
        let a = RegisteredEndpoint(host: "10.0.0.1", port: 1, identity: "spiffe://mesh.local/svc/orders", labels: [:])
        let b = RegisteredEndpoint(host: "10.0.0.2", port: 1, identity: "spiffe://mesh.local/svc/orders", labels: [:])
        let t0 = ContinuousClock.now
        try await registry.register(orders, a, registrant: "a", now: t0)
        try await registry.register(orders, b, registrant: "b", now: t0)
        #expect(await registry.snapshot(orders).endpoints == [a, b])
        #expect(await registry.snapshot(orders).revision == 2)
        // A renewal that changes nothing publishes nothing.
        try await registry.register(orders, a, registrant: "a", now: t0 + .seconds(8))
        #expect(await registry.snapshot(orders).revision == 2)
        // An unhealthy app: kept registered, not served.
        try await registry.register(orders, b, healthy: false, registrant: "b", now: t0 + .seconds(8))
        #expect(await registry.snapshot(orders).endpoints == [a])
        #expect(await registry.expire(now: t0 + .seconds(17)) == 0, "both renewed at 8 s: leases run to 18 s")
        try await registry.register(orders, b, healthy: true, registrant: "b", now: t0 + .seconds(17))
        #expect(await registry.snapshot(orders).endpoints == [a, b], "healthy again, served again")
        // a's sidecar stopped renewing: gone once its lease lapses; b lapses later.
        #expect(await registry.expire(now: t0 + .seconds(19)) == 1)
        #expect(await registry.snapshot(orders).endpoints == [b])
        #expect(await registry.expire(now: t0 + .seconds(28)) == 1)
        let last = await registry.snapshot(orders)
        #expect(last.known && last.endpoints.isEmpty, "a service with zero live instances is still known")
        #expect(await registry.snapshot(try ServiceName("ghost")).known == false)
    }

    @Test func limitsRefuseFloodsAndForeignAddressesAndRenewalsAlwaysPass() async throws {
        let registry = EndpointRegistry(limits: .init(maxPerService: 3, maxPerConnection: 1))
        let orders = try ServiceName("orders")
        let billing = try ServiceName("billing")
        func endpoint(_ host: String, _ port: Int, _ service: String = "orders") -> RegisteredEndpoint {
            RegisteredEndpoint(host: host, port: port, identity: "spiffe://mesh.local/svc/\(service)", labels: [:])
        }
        try await registry.register(orders, endpoint("10.0.0.1", 15006), registrant: "conn-1")
        // The same connection: a second distinct instance is refused; renewing its own is not.
        await #expect(throws: RegistrationRefusal(.connectionInstanceLimit, "")) {
            try await registry.register(orders, endpoint("10.0.0.9", 1), registrant: "conn-1")
        }
        try await registry.register(orders, endpoint("10.0.0.1", 15006), registrant: "conn-1")
        try await registry.register(orders, endpoint("10.0.0.2", 15006), registrant: "conn-2")
        try await registry.register(orders, endpoint("10.0.0.3", 15006), registrant: "conn-3")
        // The service is full: a fourth is refused, a renewal still passes (also over a new connection).
        await #expect(throws: RegistrationRefusal(.serviceInstanceLimit, "")) {
            try await registry.register(orders, endpoint("10.0.0.4", 15006), registrant: "conn-4")
        }
        try await registry.register(orders, endpoint("10.0.0.3", 15006), registrant: "conn-3b")
        // Another service cannot remove orders' instance: instances are kept per service.
        await registry.deregister(billing, key: "10.0.0.1:15006")
        #expect(await registry.snapshot(orders).endpoints.map(\.host) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        #expect(await registry.snapshot(billing).known == false, "refusals leave nothing behind")
    }

    @Test func renewingOverAnotherConnectionFreesNoSlot() async throws {
        let registry = EndpointRegistry(limits: .init(maxPerService: 100, maxPerConnection: 1))
        let orders = try ServiceName("orders")
        func endpoint(_ port: Int) -> RegisteredEndpoint {
            RegisteredEndpoint(host: "10.0.0.1", port: port, identity: "spiffe://mesh.local/svc/orders", labels: [:])
        }
        try await registry.register(orders, endpoint(1), registrant: "a")
        // b renews a's instance: allowed, and the instance stays counted against a.
        try await registry.register(orders, endpoint(1), registrant: "b")
        await #expect(throws: RegistrationRefusal(.connectionInstanceLimit, "")) {
            try await registry.register(orders, endpoint(2), registrant: "a")
        }
        // b registered nothing new yet: it may register one of its own, then no more.
        try await registry.register(orders, endpoint(3), registrant: "b")
        await #expect(throws: RegistrationRefusal(.connectionInstanceLimit, "")) {
            try await registry.register(orders, endpoint(4), registrant: "b")
        }
        #expect(await registry.snapshot(orders).endpoints.count == 2)
    }
}
