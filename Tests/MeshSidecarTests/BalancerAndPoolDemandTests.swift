import MeshControlClient
import MeshCore
import NIOCore
import NIOEmbedded
import Testing

@testable import MeshSidecar

@Suite struct BalancerAndPoolDemandTests {
    let a = DiscoveredEndpoint(
        address: HostPort(host: "127.0.0.1", port: 1),
        identity: .workload(try! ServiceName("orders"), in: try! TrustDomain("mesh.local")))
    let b = DiscoveredEndpoint(
        address: HostPort(host: "127.0.0.1", port: 2),
        identity: .workload(try! ServiceName("orders"), in: try! TrustDomain("mesh.local")))

    func snapshot(_ endpoints: [DiscoveredEndpoint], revision: UInt64 = 1) -> DiscoveredService {
        DiscoveredService(service: try! ServiceName("orders"), known: true, endpoints: endpoints, revision: revision)
    }

    func report(_ endpoint: DiscoveredEndpoint, _ result: AttemptReport.Result, rtt: TimeAmount? = nil, at: NIODeadline)
        -> AttemptReport
    {
        AttemptReport(
            endpoint: EndpointTarget(address: endpoint.address, identity: endpoint.identity), result: result,
            firstByte: rtt, at: at)
    }

    /// The turn belongs to the destination: a client alternating between two services still spreads each one's
    /// requests over all of its endpoints (with one counter per router, each service saw one endpoint only).
    @Test func eachDestinationHasItsOwnTurn() throws {
        let balancers = Balancers(eventLoop: EmbeddedEventLoop(), trustDomain: try TrustDomain("mesh.local"))
        let policy = try PolicyFixtures.destination("loadBalancing: round_robin")
        var picked: [String: [Int]] = [:]
        for _ in 0..<4 {
            for service in ["orders", "payments"] {
                let endpoint = balancers.balancer(for: try ServiceName(service)).pick(snapshot([a, b]), policy: policy)
                picked[service, default: []].append(endpoint.address.port)
            }
        }
        #expect(picked["orders"] == [1, 2, 1, 2])
        #expect(picked["payments"] == [1, 2, 1, 2])
    }

    @Test func reportsSettleWhatWasPicked() throws {
        let balancer = Balancer(service: try ServiceName("orders"), trustDomain: try TrustDomain("mesh.local"))
        let policy = try PolicyFixtures.destination("loadBalancing: round_robin")
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        _ = balancer.pick(snapshot([a, b]), policy: policy, at: t0)
        _ = balancer.pick(snapshot([a, b]), policy: policy, at: t0)
        #expect(balancer.inFlight(a.address) == 1 && balancer.inFlight(b.address) == 1)
        balancer.attemptEnded(report(a, .succeeded, at: t0))
        balancer.attemptEnded(report(b, .failed, at: t0))
        #expect(balancer.inFlight(a.address) == 0 && balancer.inFlight(b.address) == 0)
    }

    /// Peak-EWMA with two endpoints, one ten times slower: the fast one takes nearly everything, while the slow one
    /// is still tried now and then as its estimate decays.
    @Test func peakEWMAPrefersTheFastEndpoint() throws {
        let balancer = Balancer(service: try ServiceName("orders"), trustDomain: try TrustDomain("mesh.local"))
        let policy = DestinationPolicy.defaults
        var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var picked: [Int: Int] = [:]
        for _ in 0..<2000 {
            let endpoint = balancer.pick(snapshot([a, b]), policy: policy, at: now)
            picked[endpoint.address.port, default: 0] += 1
            let rtt: TimeAmount = endpoint.address == a.address ? .milliseconds(2) : .milliseconds(20)
            now = now + rtt
            balancer.attemptEnded(report(endpoint, .succeeded, rtt: rtt, at: now))
        }
        #expect(picked[1, default: 0] >= 1800, "\(picked)")
        #expect(picked[2, default: 0] >= 1, "the slow one is probed again as its estimate decays: \(picked)")
    }

    @Test func anEndpointThatKeepsFailingIsEjectedButNeverTheLast() throws {
        let balancer = Balancer(service: try ServiceName("orders"), trustDomain: try TrustDomain("mesh.local"))
        let policy = try PolicyFixtures.destination(
            "outlierDetection: {consecutiveFailures: 3, baseEjectionTime: 1s}\nloadBalancing: round_robin")
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for _ in 0..<3 {
            _ = balancer.pick(snapshot([a, b]), policy: policy, at: t0)
            balancer.attemptEnded(report(a, .failed, at: t0))
        }
        #expect(balancer.isEjected(a.address, at: t0))
        let picks = (0..<10).map { _ in balancer.pick(snapshot([a, b]), policy: policy, at: t0).address.port }
        #expect(picks.allSatisfy { $0 == 2 }, "ejected endpoints are skipped")
        // b fails as well: with a out, ejecting b would leave nothing.
        for _ in 0..<5 { balancer.attemptEnded(report(b, .failed, at: t0)) }
        #expect(!balancer.isEjected(b.address, at: t0), "the last endpoint in is never ejected")
        #expect(!balancer.isEjected(a.address, at: t0 + .seconds(1)), "re-admitted after the backoff")
        // A retry avoids the endpoint that just failed when there is another.
        let retry = balancer.pick(snapshot([a, b]), policy: policy, excluding: [b.address], at: t0 + .seconds(2))
        #expect(retry.address == a.address)
    }

    @Test func theCircuitBreakerAdmitsUpToMaxRequests() throws {
        let balancer = Balancer(service: try ServiceName("orders"), trustDomain: try TrustDomain("mesh.local"))
        let policy = try PolicyFixtures.destination("circuitBreaking: {maxRequests: 2}")
        #expect(balancer.admit(policy) && balancer.admit(policy))
        #expect(!balancer.admit(policy), "the third is refused at once")
        balancer.exchangeEnded()
        #expect(balancer.admit(policy))
    }

    @Test func thePoolKeepsAsManyIdleConnectionsAsTheRecentPeak() {
        var demand = PoolDemand()
        let t0 = NIODeadline.uptimeNanoseconds(0)
        for _ in 0..<100 { demand.acquired(at: t0) }
        var keep = 0
        for _ in 0..<100 { keep = demand.released(at: t0 + .seconds(1)) }
        #expect(keep == 100, "steady load of 100 concurrent requests keeps 100 connections")
        #expect(demand.released(at: t0 + .seconds(15)) == 100, "the previous window still remembers the peak")
        #expect(demand.released(at: t0 + .seconds(60)) == PoolDemand.floor, "after a quiet spell it falls back")
    }
}
