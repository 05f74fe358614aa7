import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The endpoint and connection layers of a direction's stack: performs what `ExchangeStateMachine` decides for
/// the exchanges of one downstream HTTP/1.1 connection or HTTP/2 stream — asks the direction's router for a
/// route, leases a connection from the loop's pool, streams both bodies without buffering them whole, and hands
/// each exchange's one `ExchangeCompletion` to the metrics and the balancer that picked the endpoint.
///
/// Upstream connections live on this handler's event loop, so their callbacks arrive here without hops; routes
/// and idle connections are taken synchronously, with no promise, in the common case.
final class HTTPForwardingHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamResponseSink,
    @unchecked Sendable
{
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    var machine: ExchangeStateMachine
    let router: any RequestRouter
    let pool: ConnectionPool
    let telemetry: ExchangeTelemetry
    /// The active exchange's part in its trace (from routing to completion).
    var hop: HopTrace?
    private let logger: Logger
    /// The HTTP/1.1 handlers in front of this one, which step aside for a tunnel.
    private let httpHandlers: [any RemovableChannelHandler]
    private(set) var context: ChannelHandlerContext?
    var lease: UpstreamLease?
    /// The active exchange's route: its balancer (told how each try ended), policy and plan.
    var routed: RoutedRequest?
    private var readPending = false
    /// One timer for whatever is due next: a deadline, a try's deadline, a retry's wait, an idle check.
    var timer: Scheduled<Void>?
    var timerDue: NIODeadline?
    /// Idle: a byte moved either way since the last check; checks in a row that saw none; the next check.
    var activity = false
    var quietChecks = 0
    var idleCheckAt: NIODeadline?
    var idleTimeout = InboundRouter.idleTimeout
    /// The destination whose circuit breaker counts this request as waiting for a connection, for which step, and
    /// the wait (to leave the pool's queue if the exchange ends first).
    var waiting: (balancer: Balancer, step: Int, endpoint: EndpointTarget, lease: EventLoopFuture<UpstreamLease>?)?
    /// Set while pipelined requests are being fed: a request that finishes at once (a sidecar error) must not
    /// start a nested feed per request.
    private var feeding = false

    init(
        router: any RequestRouter, pool: ConnectionPool, direction: Direction, telemetry: ExchangeTelemetry,
        logger: Logger, httpHandlers: [any RemovableChannelHandler] = []
    ) {
        self.machine = ExchangeStateMachine(direction: direction)
        self.router = router
        self.pool = pool
        self.telemetry = telemetry
        self.logger = logger
        self.httpHandlers = httpHandlers
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Drops the context (which holds this handler): on an HTTP/2 downstream there is a forwarder per stream,
    /// and keeping it would leak one per request.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        hop?.abandon()
        hop = nil
        timer?.cancel()
        timer = nil
        stopWaiting()
    }

    // MARK: client events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        activity = true
        received(unwrapInboundIn(data))
    }

    private func received(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): perform(machine.requestHead(head, at: .now()))
        case .body(let buffer): perform(machine.requestBody(buffer))
        case .end(let trailers): perform(machine.requestEnd(trailers))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lease?.channel.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if !machine.wantsRead || lease.map({ !$0.channel.isWritable }) == true {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { lease?.responses.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.downstreamClosed(at: .now()))
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            perform(machine.quiesce())
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: upstream events (same event loop)

    func upstreamRead(_ part: HTTPClientResponsePart) {
        activity = true
        switch part {
        case .head(let head):
            let now = NIODeadline.now()
            perform(machine.upstreamHead(head, at: now, withdraw: { withdraw(at: now) }))
        case .body(let buffer): perform(machine.upstreamBody(buffer))
        case .end(let trailers):
            let now = NIODeadline.now()
            perform(machine.upstreamEnd(trailers, at: now, withdraw: { withdraw(at: now) }))
        }
    }

    func upstreamReadComplete() { context?.flush() }

    func upstreamWritabilityChanged(_ writable: Bool) {
        if writable { resumeReadingIfWanted() }
    }

    func upstreamClosed(_ error: (any Error)?) {
        if let error, let lease {
            logger.debug("upstream failed", metadata: ["endpoint": "\(lease.target)", "error": "\(error)"])
        }
        // An HTTP/2 peer that refused the stream, or said GOAWAY below it, did not process the request.
        let refused = (error as? NIOHTTP2Errors.StreamClosed)?.errorCode == .refusedStream
        let now = NIODeadline.now()
        perform(machine.upstreamClosed(unprocessed: refused, at: now, withdraw: { withdraw(at: now) }))
    }

    // MARK: performing the machine's actions

    func perform(_ action: ExchangeStateMachine.Action) {
        guard let context else { return }
        // Only a step that starts or ends a try, a wait or an exchange moves what the timer waits for; body parts
        // and heads (the most frequent actions) do not.
        defer { if action.movesTimers { armTimer() } }
        switch action {
        case .none:
            break
        case .route(let head, let step):
            // trace: read what the request carries, decide sampling, start this hop's span
            hop = telemetry.begin(head, direction: machine.direction)
            switch router.route(head, channel: context.channel) {
            case .ready(let routed): use(routed, step: step)
            case .failed(let error): perform(machine.failed(error, at: .now(), step: step))
            case .pending(let future):
                future.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                    switch result {
                    case .success(let routed): self.use(routed, step: step)
                    case .failure(let error):
                        self.perform(self.machine.failed(Self.proxyError(error), at: .now(), step: step))
                    }
                }
            }
        case .acquire(let endpoint, let upgrade, let fresh, let step):
            if hop != nil { telemetry.startTry(&hop!, endpoint: endpoint) }
            acquire(endpoint, upgrade: upgrade, fresh: fresh, step: step)
        case .retry(let finish):
            settle(finish)
            // A retry without a wait (a stale pooled connection) goes at once, not through the timer.
            let now = NIODeadline.now()
            if let due = machine.nextDue, due <= now {
                perform(machine.timerFired(at: now, withdraw: { withdraw(at: now) }))
            }
            logger.debug(
                "retrying", metadata: ["endpoint": "\(finish.attempt.map { "\($0.endpoint)" } ?? "")"])
        case .repick(let excluding, let step):
            guard let routed else { preconditionFailure("a retry without a route") }
            switch router.repick(routed, excluding: excluding) {
            case .success(let endpoint): perform(machine.retryTo(endpoint, step: step))
            case .failure(let error): perform(machine.failed(error, at: .now(), step: step))
            }
        case .sendFirst(var head, let parts):
            guard let lease else { preconditionFailure("sendFirst without a lease") }
            hop?.inject(into: &head)
            lease.channel.write(HTTPClientRequestPart.head(head), promise: nil)
            for part in parts { lease.channel.write(part, promise: nil) }
            lease.channel.flush()
            resumeReadingIfWanted()
        case .send(let part, let flush):
            guard let lease else { preconditionFailure("send without a lease") }
            if flush {
                lease.channel.writeAndFlush(part, promise: nil)
            } else {
                lease.channel.write(part, promise: nil)
            }
        case .writeHead(let head):
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .writeBody(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .writeHeadAndBody(let head, let buffer):
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .writeHeadAndEnd(let head, let trailers, let finish):
            settle(finish)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            write(.end(trailers), closing: finish.closeAfter, context)
            nextPipelined()
        case .writeEnd(let trailers, let finish):
            // Give the upstream back before writing the end: on an HTTP/2 downstream that write closes the
            // stream at once, and a lease still held then would be reset as if abandoned.
            settle(finish)
            write(.end(trailers), closing: finish.closeAfter, context)
            nextPipelined()
        case .respond(let response, let finish):
            logger.info(
                "request failed",
                metadata: [
                    "cause": "\(response.head.headers.first(name: "x-mesh-error") ?? "")",
                    "detail": "\(response.detail)", "trace_id": "\(hop?.hop.traceIDHex ?? "")",
                    "span_id": "\(hop?.hop.spanIDHex ?? "")",
                ])
            settle(finish)
            context.write(wrapOutboundOut(.head(response.head)), promise: nil)
            if !response.body.isEmpty {
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))),
                    promise: nil)
            }
            write(.end(response.trailers), closing: finish.closeAfter, context)
            nextPipelined()
        case .splice(let finish):
            guard let lease else { preconditionFailure("splice without a lease") }
            self.lease = nil
            settle(finish)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            do {
                try UpgradeTunnel.splice(
                    downstream: context, downstreamHTTP: httpHandlers, forwarder: self, upstream: lease)
            } catch {
                logger.info("could not open the upgraded tunnel", metadata: ["error": "\(error)"])
                lease.channel.close(promise: nil)
                context.close(promise: nil)
            }
        case .reset(let finish):
            settle(finish)
            context.close(promise: nil)
        case .releaseUnused:
            break
        case .exchangeDone(let close):
            idleCheckAt = nil
            if close { context.close(promise: nil) } else { nextPipelined() }
        case .close:
            context.close(promise: nil)
        }
    }

    private func write(_ part: HTTPServerResponsePart, closing: Bool, _ context: ChannelHandlerContext) {
        guard closing else {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(part)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Feeds the requests a client pipelined behind the finished exchange, then reads on if it may.
    private func nextPipelined() {
        guard !feeding else { return }
        feeding = true
        while let part = machine.nextPipelinedPart() { received(part) }
        feeding = false
        // Parts fed here did not come with a read-complete: send them on now.
        lease?.channel.flush()
        resumeReadingIfWanted()
    }

    private func resumeReadingIfWanted() {
        guard readPending, let context, machine.wantsRead, lease.map({ $0.channel.isWritable }) != false else {
            return
        }
        readPending = false
        context.read()
    }
}
