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

    func completion(_ endpoint: DiscoveredEndpoint, _ outcome: ExchangeCompletion.Outcome) -> ExchangeCompletion {
        ExchangeCompletion(
            direction: .outbound, outcome: outcome, started: .uptimeNanoseconds(0), responseStarted: nil,
            ended: .uptimeNanoseconds(1), requestBytes: 0, responseBytes: 0,
            endpoint: EndpointTarget(address: endpoint.address, identity: endpoint.identity), attempts: 1)
    }

    /// The turn belongs to the destination: a client alternating between two services still spreads each one's
    /// requests over all of its endpoints (with one counter per router, each service saw one endpoint only).
    @Test func eachDestinationHasItsOwnTurn() throws {
        let balancers = Balancers(eventLoop: EmbeddedEventLoop(), trustDomain: try TrustDomain("mesh.local"))
        var picked: [String: [Int]] = [:]
        for _ in 0..<4 {
            for service in ["orders", "payments"] {
                let endpoint = balancers.balancer(for: try ServiceName(service)).pick([a, b])
                picked[service, default: []].append(endpoint.address.port)
            }
        }
        #expect(picked["orders"] == [1, 2, 1, 2])
        #expect(picked["payments"] == [1, 2, 1, 2])
    }

    @Test func completionsSettleWhatWasPicked() throws {
        let balancer = RoundRobinBalancer(
            service: try ServiceName("orders"), trustDomain: try TrustDomain("mesh.local"))
        _ = balancer.pick([a, b])
        _ = balancer.pick([a, b])
        #expect(balancer.inFlight[a.address] == 1 && balancer.inFlight[b.address] == 1)
        balancer.completed(completion(a, .responded(status: 200)))
        balancer.completed(completion(b, .failed(.upstreamReset, status: 502)))
        #expect(balancer.inFlight.isEmpty)
        #expect(balancer.completions == 2 && balancer.failures == 1)
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
