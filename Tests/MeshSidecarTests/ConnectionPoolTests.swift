import MeshCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// The pool under a cold burst: a few handshakes at a time, and the rest of the requests served by connections
/// given back, not one new connection each.
@Suite struct ConnectionPoolTests {
    /// Connects only when the test says so.
    final class DeferredConnector: UpstreamConnector, @unchecked Sendable {
        let loop: EmbeddedEventLoop
        var pending: [EventLoopPromise<UpstreamConnection>] = []
        init(loop: EmbeddedEventLoop) { self.loop = loop }

        func connect(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
            -> EventLoopFuture<UpstreamConnection>
        {
            let promise = eventLoop.makePromise(of: UpstreamConnection.self)
            pending.append(promise)
            return promise.futureResult
        }

        func connectForUpgrade(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
            -> EventLoopFuture<
                UpstreamConnection
            >
        { connect(target, timeout: timeout, on: eventLoop) }

        /// Completes the oldest connect with a fresh HTTP/1.1 connection.
        func completeOne() throws {
            let responses = UpstreamResponseHandler()
            let channel = EmbeddedChannel(handler: responses, loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            pending.removeFirst().succeed(
                UpstreamConnection(channel: channel, http1: .init(responses: responses, http: [responses])))
        }
    }

    @Test func aColdBurstOpensAFewConnectionsAndTheRestWaitForOnesGivenBack() throws {
        let loop = EmbeddedEventLoop()
        let connector = DeferredConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        let target = EndpointTarget(address: HostPort(host: "127.0.0.1", port: 9), identity: nil)

        // The first connection tells the pool the endpoint speaks HTTP/1.1.
        var first: UpstreamLease?
        pool.acquire(target).future(on: loop).whenSuccess { first = $0 }
        try connector.completeOne()
        guard let first else {
            Issue.record("no first lease")
            return
        }

        var leases: [UpstreamLease] = []
        for _ in 0..<10 { pool.acquire(target).future(on: loop).whenSuccess { leases.append($0) } }
        #expect(connector.pending.count == ConnectionPool.maxConnectsInFlight, "only so many handshakes at once")

        pool.release(first, reusable: true)
        #expect(leases.count == 1 && leases[0].channel === first.channel, "a waiting request gets it at once")

        try connector.completeOne()
        #expect(leases.count == 2)
        #expect(connector.pending.count == ConnectionPool.maxConnectsInFlight, "another starts for the next waiter")
    }
}
