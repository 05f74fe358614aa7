import Logging
import NIOCore
import NIOHTTP1

/// Forwards each HTTP request of a downstream HTTP/1.1 connection or HTTP/2 stream to an upstream connection chosen by the
/// direction's `RequestRouter` and leased from its `ConnectionPool`, streaming bodies both ways without
/// buffering them whole. Shared by inbound (→ app) and outbound (→ peer sidecar).
///
/// One exchange at a time (`HTTPServerPipelineHandler` queues pipelined requests). Upstream connections
/// live on this handler's event loop, so their callbacks arrive here without hops.
final class HTTPForwardingHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Waiting for a route and a connection; request parts are held (reads are paused meanwhile).
        case routing
        case forwarding(lease: Lease)
        /// The response is done (an error, or the upstream answered early); the rest of the request is dropped.
        case discarding
        case closed
    }

    private struct Lease {
        let channel: any Channel
        let handler: UpstreamResponseHandler
        let target: EndpointTarget
        /// Taken from the pool's idle list rather than freshly connected.
        let reused: Bool
    }

    private let router: any RequestRouter
    private let pool: ConnectionPool
    private let logger: Logger
    private let direction: Direction
    private let metrics: SidecarMetrics
    private var requestStart = NIODeadline.now()
    private var responseStatus = 0
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var held: [HTTPClientRequestPart] = []
    private var requestHead: HTTPRequestHead?
    private var requestEnded = false
    private var responseStarted = false
    private var upstreamKeepAlive = true
    private var extraResponseHeaders: [(String, String)] = []
    /// The protocol this exchange asks to upgrade to (WebSocket), if any: it gets an HTTP/1.1 connection of its
    /// own, and a 101 turns both connections into a byte tunnel.
    private var upgrade: String?
    private var switchingProtocols = false
    /// A gRPC status that came in the response head (a trailers-only response), sent on as trailers.
    private var statusTrailers: HTTPHeaders?
    private var readPending = false
    private var replay: ReplayBuffer?

    init(router: any RequestRouter, pool: ConnectionPool, direction: Direction, metrics: SidecarMetrics, logger: Logger)
    {
        self.router = router
        self.pool = pool
        self.direction = direction
        self.metrics = metrics
        self.logger = logger
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Drops the context (which holds this handler): on an HTTP/2 downstream there is a forwarder per stream,
    /// and keeping it would leak one per request.
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: downstream events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, context: context)
        case .body(let buffer):
            switch state {
            case .routing: held.append(.body(.byteBuffer(buffer)))
            case .forwarding(let lease):
                replay?.append(.body(.byteBuffer(buffer)))
                lease.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            case .idle, .discarding, .closed: break
            }
        case .end(let trailers):
            requestEnded = true
            switch state {
            case .routing: held.append(.end(trailers))
            case .forwarding(let lease):
                replay?.append(.end(trailers))
                lease.channel.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
            case .discarding: finishExchange()
            case .idle, .closed: break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding(let lease) = state { lease.channel.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        switch state {
        case .routing:
            readPending = true
        case .forwarding(let lease) where !lease.channel.isWritable:
            readPending = true
        default:
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .forwarding(let lease) = state { lease.handler.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .forwarding(let lease) = state {
            lease.handler.sink = nil
            pool.release(lease.channel, target: lease.target, reusable: false)
        }
        state = .closed
        context.fireChannelInactive()
    }

    // MARK: the exchange

    private func begin(_ incoming: HTTPRequestHead, context: ChannelHandlerContext) {
        guard case .idle = state else {
            logger.error("request head while an exchange is active; closing", metadata: ["state": "\(state)"])
            context.close(promise: nil)
            return
        }
        var head = incoming
        upgrade = incoming.version.major == 1 ? HopByHopHeaders.upgrade(incoming.headers) : nil
        switchingProtocols = false
        HopByHopHeaders.strip(&head.headers)
        if let upgrade { HopByHopHeaders.restoreUpgrade(upgrade, in: &head.headers) }
        // Every upstream hop is HTTP/1.1 or an HTTP/2 stream (whose codec ignores the version).
        head.version = .http1_1
        requestHead = incoming
        requestStart = .now()
        requestEnded = false
        responseStarted = false
        upstreamKeepAlive = true
        held = []
        replay = nil
        state = .routing
        router.route(head, channel: context.channel)
            .hop(to: context.eventLoop)
            .flatMap { [pool, upgrade] routed in
                guard upgrade != nil else { return pool.acquire(routed.endpoint).map { (routed, $0) } }
                return pool.acquireForUpgrade(routed.endpoint).map { (routed, ($0, false)) }
            }
            .assumeIsolated()
            .whenComplete { result in self.routed(result) }
    }

    private func routed(_ result: Result<(RoutedRequest, (channel: any Channel, reused: Bool)), any Error>) {
        guard case .routing = state else {
            // The downstream went away while we were connecting: give the connection back unused.
            if case .success(let (routed, connection)) = result {
                pool.release(connection.channel, target: routed.endpoint, reusable: true)
            }
            return
        }
        switch result {
        case .failure(let error):
            respond(with: error as? ProxyError ?? ProxyError(.connectFailed, "\(error)"))
        case .success(let (routed, connection)):
            extraResponseHeaders = routed.responseHeaders
            var buffer = ReplayBuffer(head: routed.head)
            for part in held { buffer.append(part) }
            replay = buffer
            let parts = [HTTPClientRequestPart.head(routed.head)] + held
            held = []
            attach(connection.channel, target: routed.endpoint, reused: connection.reused, sending: parts)
        }
    }

    /// Makes `channel` this exchange's upstream and sends what the request has so far.
    private func attach(
        _ channel: any Channel, target: EndpointTarget, reused: Bool, sending parts: [HTTPClientRequestPart]
    ) {
        guard let context else { return }
        guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamResponseHandler.self) else {
            preconditionFailure("upstream connection without UpstreamResponseHandler")
        }
        handler.sink = self
        state = .forwarding(lease: Lease(channel: channel, handler: handler, target: target, reused: reused))
        for part in parts { channel.write(part, promise: nil) }
        channel.flush()
        if readPending {
            readPending = false
            context.read()
        }
    }

    /// Sends the whole request again on a new connection, after a reused one closed before answering.
    private func replay(_ parts: [HTTPClientRequestPart], to target: EndpointTarget, after error: (any Error)?) {
        logger.debug(
            "reused connection closed before responding; replaying on a new one",
            metadata: ["endpoint": "\(target)", "error": "\(error.map { "\($0)" } ?? "closed")"])
        state = .routing
        replay = nil
        pool.acquireFresh(target).assumeIsolated().whenComplete { result in
            guard case .routing = self.state else {
                if case .success(let channel) = result { self.pool.release(channel, target: target, reusable: true) }
                return
            }
            switch result {
            case .failure(let error): self.respond(with: error as? ProxyError ?? ProxyError(.connectFailed, "\(error)"))
            case .success(let channel): self.attach(channel, target: target, reused: false, sending: parts)
            }
        }
    }

    /// Answers with the sidecar's own error response at once; the rest of an unfinished request body is
    /// read and dropped, so a keep-alive client keeps its connection.
    private func respond(with error: ProxyError) {
        guard let context, let request = requestHead else { return }
        logger.info(
            "request failed",
            metadata: ["cause": "\(error.cause.rawValue)", "detail": "\(error.detail)", "uri": "\(request.uri)"])
        let close = !request.keepsConnection
        let response = ProxyErrorResponse.make(
            error, requestHeaders: request.headers, version: request.version, close: close)
        metrics.proxyError(direction, error.cause)
        // Counted by the HTTP status the failure means, also for gRPC callers (who see 200 and a grpc-status).
        metrics.requestCompleted(
            direction, status: Int(ProxyErrorResponse.status(for: error.cause).code), elapsed: elapsed)
        context.write(wrapOutboundOut(.head(response.head)), promise: nil)
        if !response.body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))),
                promise: nil)
        }
        held = []
        if close {
            context.writeAndFlush(wrapOutboundOut(.end(response.trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            state = .closed
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(response.trailers)), promise: nil)
        state = .discarding
        if requestEnded {
            finishExchange()
        } else if readPending {
            readPending = false
            context.read()
        }
    }

    private func finishExchange() {
        guard let context else { return }
        let keepAlive = requestHead?.keepsConnection ?? false
        state = .idle
        requestHead = nil
        if !keepAlive {
            context.close(promise: nil)
            return
        }
        if readPending {
            readPending = false
            context.read()
        }
    }

    // MARK: upstream events (same event loop)

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard case .forwarding(let lease) = state, let context, let request = requestHead else { return }
        switch part {
        case .head(let upstreamHead):
            var headers = upstreamHead.headers
            HopByHopHeaders.strip(&headers)
            for (name, value) in extraResponseHeaders { headers.replaceOrAdd(name: name, value: value) }
            statusTrailers = GRPCTrailersOnly.split(&headers)
            // Any response byte means the request reached the app: never replay it from here on.
            replay?.discard()
            if upgrade != nil, upstreamHead.status == .switchingProtocols {
                // The upgrade was accepted: its Connection/Upgrade headers go back on, and after this head the
                // two connections become a tunnel (at the response's end, once the decoder is done with it).
                HopByHopHeaders.restoreUpgrade(upstreamHead.headers.first(name: "upgrade") ?? upgrade!, in: &headers)
                switchingProtocols = true
            }
            // 1xx (100 Continue, 103 Early Hints) pass through; only the final head decides the rest.
            if upstreamHead.status.code >= 200 {
                upstreamKeepAlive = upstreamHead.version.major >= 2 || upstreamHead.isKeepAlive
                if !request.keepsConnection { headers.add(name: "connection", value: "close") }
                responseStarted = true
                responseStatus = Int(upstreamHead.status.code)
            }
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: request.version, status: upstreamHead.status, headers: headers))),
                promise: nil)
        case .body(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end where switchingProtocols:
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            metrics.requestCompleted(direction, status: 101, elapsed: elapsed)
            state = .closed
            do {
                try UpgradeTunnel.splice(
                    downstream: context, forwarder: self, upstream: lease.channel, responseHandler: lease.handler)
            } catch {
                logger.info("could not open the upgraded tunnel", metadata: ["error": "\(error)"])
                lease.channel.close(promise: nil)
                context.close(promise: nil)
            }
        case .end(let trailers):
            metrics.requestCompleted(direction, status: responseStatus, elapsed: elapsed)
            // Give the upstream back before writing the end: on an HTTP/2 downstream that write closes the
            // stream at once, and a lease still held then would be reset as if abandoned.
            lease.handler.sink = nil
            state = .discarding
            // An upgrade's connection was its own (and may be half-switched): it is never reused.
            pool.release(
                lease.channel, target: lease.target, reusable: requestEnded && upstreamKeepAlive && upgrade == nil)
            context.writeAndFlush(
                wrapOutboundOut(.end(GRPCTrailersOnly.merge(statusTrailers, into: trailers))), promise: nil)
            statusTrailers = nil
            if requestEnded, case .discarding = state { finishExchange() }
        }
    }

    func upstreamReadComplete() { context?.flush() }

    private var elapsed: Duration {
        .nanoseconds((NIODeadline.now() - requestStart).nanoseconds)
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        guard writable, readPending, case .forwarding = state, let context else { return }
        readPending = false
        context.read()
    }

    /// The upstream connection failed or closed mid-exchange.
    func upstreamClosed(_ error: (any Error)?) {
        guard case .forwarding(let lease) = state, let context else { return }
        lease.handler.sink = nil
        pool.release(lease.channel, target: lease.target, reusable: false)
        if responseStarted {
            // Part of the response is already out: the only honest signal left is to reset.
            state = .closed
            context.close(promise: nil)
            return
        }
        if lease.reused, requestEnded, let parts = replay?.replayable {
            replay(parts, to: lease.target, after: error)
            return
        }
        respond(
            with: ProxyError(
                .upstreamReset,
                "\(lease.target) closed the connection before responding\(error.map { ": \($0)" } ?? "")"))
    }
}

extension HTTPRequestHead {
    /// Whether the downstream connection stays open after this exchange. An HTTP/2 stream (version 2) is
    /// one exchange by nature and its connection is not ours to close.
    var keepsConnection: Bool { version.major >= 2 || isKeepAlive }
}
