import Foundation
import Logging
import MeshCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// The forwarding layer on embedded channels: downstream parts in, upstream parts out, and back.
@Suite struct HTTPForwardingPipelineTests {
    /// Hands out embedded upstream channels on the same loop and records them.
    final class EmbeddedConnector: UpstreamConnector, @unchecked Sendable {
        let loop: EmbeddedEventLoop
        var opened: [EmbeddedChannel] = []
        var failure: ProxyError?
        init(loop: EmbeddedEventLoop) { self.loop = loop }

        func connect(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
            -> EventLoopFuture<UpstreamConnection>
        {
            if let failure { return eventLoop.makeFailedFuture(failure) }
            let responses = UpstreamResponseHandler()
            let channel = EmbeddedChannel(handler: responses, loop: loop)
            _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            opened.append(channel)
            return eventLoop.makeSucceededFuture(
                UpstreamConnection(channel: channel, http1: .init(responses: responses, http: [responses])))
        }

        func connectForUpgrade(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
            -> EventLoopFuture<
                UpstreamConnection
            >
        {
            connect(target, timeout: timeout, on: eventLoop)
        }
    }

    struct FixedRouter: RequestRouter {
        var rules: RetryRules? = .inbound

        func route(_ head: HTTPRequestHead, channel: any Channel) -> RouteDecision {
            .ready(
                RoutedRequest(
                    head: head, endpoint: EndpointTarget(address: HostPort(host: "127.0.0.1", port: 1), identity: nil),
                    responseHeaders: [("x-mesh-upstream-identity", "spiffe://mesh.local/svc/orders")],
                    plan: ExchangePlan(rules: rules, deadline: nil), idleTimeout: .minutes(5)))
        }

        func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError> {
            .success(routed.endpoint)
        }

        func peer(of routed: RoutedRequest?, head: HTTPRequestHead?, cause: String?) -> (PeerLabels, route: String) {
            (PeerLabels(service: "orders", identity: nil), "orders")
        }
    }

    struct FailingRouter: RequestRouter {
        func route(_ head: HTTPRequestHead, channel: any Channel) -> RouteDecision {
            .failed(ProxyError(.noEndpoints, "service \"orders\" has no endpoints"))
        }

        func repick(_ routed: RoutedRequest, excluding: [EndpointTarget]) -> Result<EndpointTarget, ProxyError> {
            .failure(ProxyError(.noEndpoints, "none"))
        }

        func peer(of routed: RoutedRequest?, head: HTTPRequestHead?, cause: String?) -> (PeerLabels, route: String) {
            (PeerLabels(service: "orders", identity: nil), "orders")
        }
    }

    let metrics = SidecarMetrics()
    var telemetry: ExchangeTelemetry {
        ExchangeTelemetry(metrics: metrics, service: "frontend", sampling: 0, export: nil, accessLog: nil)
    }

    func downstream(_ router: any RequestRouter, _ pool: ConnectionPool, loop: EmbeddedEventLoop) throws
        -> EmbeddedChannel
    {
        let channel = EmbeddedChannel(
            handler: HTTPForwardingHandler(
                router: router, pool: pool, direction: .outbound, telemetry: telemetry, logger: Logger(label: "test")),
            loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        return channel
    }

    func request(_ uri: String = "/orders", method: HTTPMethod = .POST, headers: HTTPHeaders = [:]) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        head.headers.add(name: "host", value: "orders")
        return head
    }

    @Test func streamsBothWaysAndReusesTheUpstreamConnection() throws {
        let loop = EmbeddedEventLoop()
        let connector = EmbeddedConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        let down = try downstream(FixedRouter(), pool, loop: loop)

        for round in 1...2 {
            try down.writeInbound(
                HTTPServerRequestPart.head(
                    request(headers: ["connection": "keep-alive, x-drop", "x-drop": "1", "x-app": "a"])))
            try down.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "hello")))
            try down.writeInbound(HTTPServerRequestPart.end(nil))
            #expect(connector.opened.count == 1, "round \(round) reuses the pooled connection")
            let up = connector.opened[0]
            guard case .head(let sent) = try up.readOutbound(as: HTTPClientRequestPart.self) else {
                Issue.record("no head"); return
            }
            #expect(
                sent.headers["x-drop"].isEmpty && sent.headers["connection"].isEmpty
                    && sent.headers.first(name: "x-app") == "a")
            #expect(
                try up.readOutbound(as: HTTPClientRequestPart.self) == .body(.byteBuffer(ByteBuffer(string: "hello"))))
            #expect(try up.readOutbound(as: HTTPClientRequestPart.self) == .end(nil))

            try up.writeInbound(
                HTTPClientResponsePart.head(
                    HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "2"])))
            try up.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "ok")))
            try up.writeInbound(HTTPClientResponsePart.end(nil))
            guard case .head(let response) = try down.readOutbound(as: HTTPServerResponsePart.self) else {
                Issue.record("no response"); return
            }
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "x-mesh-upstream-identity") == "spiffe://mesh.local/svc/orders")
            #expect(
                try down.readOutbound(as: HTTPServerResponsePart.self) == .body(.byteBuffer(ByteBuffer(string: "ok"))))
            #expect(try down.readOutbound(as: HTTPServerResponsePart.self) == .end(nil))
            #expect(pool.idleCount == 1)
        }
    }

    @Test func anUpstreamThatClosesBeforeRespondingIsA502UpstreamReset() throws {
        let loop = EmbeddedEventLoop()
        let connector = EmbeddedConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        let down = try downstream(FixedRouter(), pool, loop: loop)
        try down.writeInbound(HTTPServerRequestPart.head(request()))
        try down.writeInbound(HTTPServerRequestPart.end(nil))
        try connector.opened[0].close().wait()
        guard case .head(let response) = try down.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response"); return
        }
        #expect(response.status == .badGateway)
        #expect(response.headers.first(name: "x-mesh-error") == "upstream_reset")
        #expect(pool.idleCount == 0, "a reset connection is never pooled")
    }

    @Test func routingAndConnectFailuresAreAnsweredByTheSidecar() throws {
        let loop = EmbeddedEventLoop()
        let connector = EmbeddedConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        let down = try downstream(FailingRouter(), pool, loop: loop)
        try down.writeInbound(HTTPServerRequestPart.head(request(headers: ["content-type": "application/grpc"])))
        try down.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let response) = try down.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response"); return
        }
        #expect(response.status == .ok, "gRPC callers get their status in grpc-status")
        #expect(response.headers.first(name: "x-mesh-error") == "no_endpoints")
        guard case .end(let trailers) = try down.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no trailers"); return
        }
        #expect(trailers?.first(name: "grpc-status") == "14")
        #expect(down.isActive, "a keep-alive client keeps its connection after a sidecar error")
        let text = String(decoding: metrics.render(identityNotAfter: Date()), as: UTF8.self)
        #expect(
            text.contains(
                #"mesh_proxy_errors_total{direction="outbound",peer_service="orders",cause="no_endpoints"} 1"#),
            "\(text)")
        #expect(
            text.contains(#"mesh_http_requests_total{direction="outbound",peer_service="orders",status_class="5xx"} 1"#)
        )

        connector.failure = ProxyError(.tlsPeerIdentityMismatch, "peer presented spiffe://mesh.local/svc/payments")
        // Without retries: a connect failure (here, the wrong peer) is answered at once.
        let down2 = try downstream(FixedRouter(rules: nil), pool, loop: loop)
        try down2.writeInbound(HTTPServerRequestPart.head(request()))
        try down2.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let r2) = try down2.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response"); return
        }
        #expect(r2.status == .badGateway && r2.headers.first(name: "x-mesh-error") == "tls_peer_identity_mismatch")
    }

    /// One full exchange on `down`, answered 200 by the newest upstream connection.
    func exchange(_ down: EmbeddedChannel, _ connector: EmbeddedConnector, method: HTTPMethod) throws {
        try down.writeInbound(HTTPServerRequestPart.head(request(method: method)))
        try down.writeInbound(HTTPServerRequestPart.end(nil))
        let up = connector.opened.last!
        while try up.readOutbound(as: HTTPClientRequestPart.self) != nil {}
        try up.writeInbound(
            HTTPClientResponsePart.head(
                HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "0"])))
        try up.writeInbound(HTTPClientResponsePart.end(nil))
        while try down.readOutbound(as: HTTPServerResponsePart.self) != nil {}
    }

    @Test func anIdempotentRequestIsReplayedWhenAReusedConnectionWasAlreadyClosed() throws {
        let loop = EmbeddedEventLoop()
        let connector = EmbeddedConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        let down = try downstream(FixedRouter(), pool, loop: loop)
        try exchange(down, connector, method: .GET)
        #expect(pool.idleCount == 1)

        // The next GET goes out on the pooled connection, which the server closes before answering.
        try down.writeInbound(HTTPServerRequestPart.head(request(method: .GET)))
        try down.writeInbound(HTTPServerRequestPart.end(nil))
        try connector.opened[0].close().wait()
        guard connector.opened.count == 2 else {
            Issue.record("not replayed on a fresh connection (\(connector.opened.count) connections)")
            return
        }
        let fresh = connector.opened[1]
        guard case .head(let replayed) = try fresh.readOutbound(as: HTTPClientRequestPart.self) else {
            Issue.record("nothing replayed")
            return
        }
        #expect(replayed.method == .GET)
        #expect(try fresh.readOutbound(as: HTTPClientRequestPart.self) == .end(nil))
        try fresh.writeInbound(
            HTTPClientResponsePart.head(
                HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "0"])))
        try fresh.writeInbound(HTTPClientResponsePart.end(nil))
        guard case .head(let response) = try down.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response")
            return
        }
        #expect(response.status == .ok, "the client never sees the race")
    }

    @Test func aNonIdempotentRequestIsNeverReplayed() throws {
        let loop = EmbeddedEventLoop()
        let connector = EmbeddedConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        let down = try downstream(FixedRouter(), pool, loop: loop)
        try exchange(down, connector, method: .POST)
        try down.writeInbound(HTTPServerRequestPart.head(request(method: .POST)))
        try down.writeInbound(HTTPServerRequestPart.end(nil))
        try connector.opened[0].close().wait()
        #expect(connector.opened.count == 1)
        guard case .head(let response) = try down.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no response")
            return
        }
        #expect(response.status == .badGateway && response.headers.first(name: "x-mesh-error") == "upstream_reset")
    }

    @Test func replayBufferKeepsOnlySmallCompleteBodies() {
        var get = ReplayBuffer(limit: 8)
        #expect(get.replayable == nil, "incomplete")
        get.append(.end(nil))
        #expect(get.replayable?.count == 1)
        get.discard()
        #expect(get.replayable == nil, "a response byte arrived")

        var put = ReplayBuffer(limit: 8)
        put.append(.body(.byteBuffer(ByteBuffer(string: "0123456789"))))
        put.append(.end(nil))
        #expect(put.replayable == nil, "body over the limit")

        var small = ReplayBuffer(limit: 8)
        small.append(.body(.byteBuffer(ByteBuffer(string: "0123"))))
        small.append(.end(nil))
        #expect(small.replayable?.count == 2, "body and end")
    }

    /// An HTTP/2 stream gets a forwarder per request: it must be freed with its stream, or every request
    /// leaks one (as it did, through the handler's own reference to its context).
    @Test func aClosedDownstreamFreesItsForwarder() throws {
        let loop = EmbeddedEventLoop()
        let connector = EmbeddedConnector(loop: loop)
        let pool = ConnectionPool(eventLoop: loop, connector: connector)
        weak var freed: HTTPForwardingHandler?
        try {
            let handler = HTTPForwardingHandler(
                router: FixedRouter(), pool: pool, direction: .inbound, telemetry: telemetry,
                logger: Logger(label: "test"))
            freed = handler
            let down = EmbeddedChannel(handler: handler, loop: loop)
            try down.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            try down.writeInbound(HTTPServerRequestPart.head(request(method: .GET)))
            try down.writeInbound(HTTPServerRequestPart.end(nil))
            let up = connector.opened[0]
            try up.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .noContent)))
            try up.writeInbound(HTTPClientResponsePart.end(nil))
            try down.close().wait()
            loop.run()  // the pipeline's teardown runs as a task after the close
        }()
        #expect(pool.idleCount == 1, "the exchange completed")
        #expect(freed == nil, "the forwarder went with its closed downstream")
    }
}
