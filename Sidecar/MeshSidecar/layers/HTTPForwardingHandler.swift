import Logging
import NIOCore
import NIOHTTP1

/// Forwards each HTTP/1.1 request of a downstream connection to an upstream connection chosen by the
/// direction's `RequestRouter` and leased from its `ConnectionPool`, streaming bodies both ways without
/// buffering them whole. Shared by inbound (→ app) and outbound (→ peer sidecar).
///
/// One exchange at a time (`HTTPServerPipelineHandler` queues pipelined requests). Upstream connections
/// live on this handler's event loop, so their callbacks arrive here without hops.
final class HTTPForwardingHandler: ChannelDuplexHandler, @unchecked Sendable {
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
    }

    private let router: any RequestRouter
    private let pool: ConnectionPool
    private let logger: Logger
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var held: [HTTPClientRequestPart] = []
    private var requestHead: HTTPRequestHead?
    private var requestEnded = false
    private var responseStarted = false
    private var upstreamKeepAlive = true
    private var extraResponseHeaders: [(String, String)] = []
    private var readPending = false

    init(router: any RequestRouter, pool: ConnectionPool, logger: Logger) {
        self.router = router
        self.pool = pool
        self.logger = logger
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    // MARK: downstream events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, context: context)
        case .body(let buffer):
            switch state {
            case .routing: held.append(.body(.byteBuffer(buffer)))
            case .forwarding(let lease):
                lease.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            case .idle, .discarding, .closed: break
            }
        case .end(let trailers):
            requestEnded = true
            switch state {
            case .routing: held.append(.end(trailers))
            case .forwarding(let lease): lease.channel.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
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
        HopByHopHeaders.strip(&head.headers)
        requestHead = incoming
        requestEnded = false
        responseStarted = false
        upstreamKeepAlive = true
        held = []
        state = .routing
        router.route(head, channel: context.channel)
            .hop(to: context.eventLoop)
            .flatMap { [pool] routed in pool.acquire(routed.endpoint).map { (routed, $0) } }
            .assumeIsolated()
            .whenComplete { result in self.routed(result) }
    }

    private func routed(_ result: Result<(RoutedRequest, any Channel), any Error>) {
        guard case .routing = state, let context else {
            // The downstream went away while we were connecting: give the connection back unused.
            if case .success(let (routed, channel)) = result {
                pool.release(channel, target: routed.endpoint, reusable: true)
            }
            return
        }
        switch result {
        case .failure(let error):
            let proxyError = error as? ProxyError ?? ProxyError(.connectFailed, "\(error)")
            respond(with: proxyError)
        case .success(let (routed, channel)):
            guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamResponseHandler.self) else {
                preconditionFailure("upstream connection without UpstreamResponseHandler")
            }
            handler.sink = self
            extraResponseHeaders = routed.responseHeaders
            let lease = Lease(channel: channel, handler: handler, target: routed.endpoint)
            state = .forwarding(lease: lease)
            channel.write(HTTPClientRequestPart.head(routed.head), promise: nil)
            for part in held { channel.write(part, promise: nil) }
            held = []
            channel.flush()
            if readPending {
                readPending = false
                context.read()
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
        let close = !request.isKeepAlive
        let (head, body) = ProxyErrorResponse.make(
            error, requestHeaders: request.headers, version: request.version, close: close)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        held = []
        if close {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            state = .closed
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
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
        let keepAlive = requestHead?.isKeepAlive ?? false
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
            upstreamKeepAlive = upstreamHead.isKeepAlive
            HopByHopHeaders.strip(&headers)
            for (name, value) in extraResponseHeaders { headers.replaceOrAdd(name: name, value: value) }
            if !request.isKeepAlive { headers.add(name: "connection", value: "close") }
            if upstreamHead.status.code >= 200 { responseStarted = true }
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: request.version, status: upstreamHead.status, headers: headers))),
                promise: nil)
        case .body(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end(let trailers):
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            lease.handler.sink = nil
            pool.release(lease.channel, target: lease.target, reusable: requestEnded && upstreamKeepAlive)
            if requestEnded {
                finishExchange()
            } else {
                state = .discarding
            }
        }
    }

    func upstreamReadComplete() { context?.flush() }

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
        respond(
            with: ProxyError(
                .upstreamReset,
                "\(lease.target) closed the connection before responding\(error.map { ": \($0)" } ?? "")"))
    }
}
