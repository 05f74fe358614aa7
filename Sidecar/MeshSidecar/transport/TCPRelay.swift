import Logging
import NIOCore
import NIOTLS

/// Starts an opaque relay for one accepted connection: connects to `target` once the connection is ready
/// (after the TLS handshake on inbound, so an unverified peer never reaches the app), holds what arrives
/// meanwhile, then glues the two channels and steps aside.
final class TCPRelayHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    enum Start { case onActive, afterTLSHandshake }

    private let target: @Sendable (any EventLoop) -> EventLoopFuture<any Channel>
    private let start: Start
    private let logger: Logger
    /// The peer's metrics: connections and bytes, counted once the relay is in place.
    private let counting: (direction: Direction, metrics: PeerMetrics, peer: @Sendable (any Channel) -> String)?
    private var connecting = false
    private var held: [ByteBuffer] = []

    init(
        start: Start, logger: Logger,
        counting: (direction: Direction, metrics: PeerMetrics, peer: @Sendable (any Channel) -> String)? = nil,
        connect: @escaping @Sendable (any EventLoop) -> EventLoopFuture<any Channel>
    ) {
        self.start = start
        self.logger = logger
        self.counting = counting
        self.target = connect
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if start == .onActive, context.channel.isActive { begin(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if start == .onActive { begin(context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if start == .afterTLSHandshake, case .handshakeCompleted = event as? TLSUserEvent { begin(context) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { held.append(unwrapInboundIn(data)) }

    func read(context: ChannelHandlerContext) {
        // Before the relay exists, read only what the TLS handshake needs; hold the rest.
        if !connecting { context.read() }
    }

    private func begin(_ context: ChannelHandlerContext) {
        guard !connecting else { return }
        connecting = true
        target(context.eventLoop).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                self.logger.info("tcp relay could not connect", metadata: ["error": "\(error)"])
                context.close(promise: nil)
            case .success(let upstream):
                self.glue(context, to: upstream)
            }
        }
    }

    private func glue(_ context: ChannelHandlerContext, to upstream: any Channel) {
        guard context.channel.isActive else {
            upstream.close(promise: nil)
            return
        }
        let (local, remote) = GlueHandler.matchedPair()
        do {
            try upstream.pipeline.syncOperations.addHandler(remote)
            try context.pipeline.syncOperations.addHandler(local, position: .after(self))
            if let counting {
                let series = counting.metrics.series(counting.direction, counting.peer(context.channel))
                counting.metrics.tcpOpened(series)
                // This connection is the peer's inbound (what it carries comes from the peer) and the app's outbound
                // (what it carries goes to the peer). The bytes held until now, then every byte either way.
                let bytes = counting.metrics.tcpBytes(series)
                let (read, written) =
                    counting.direction == .inbound ? (bytes.received, bytes.sent) : (bytes.sent, bytes.received)
                read.increment(by: Int64(held.reduce(0) { $0 + $1.readableBytes }))
                try context.pipeline.syncOperations.addHandler(
                    ByteCounter(read: read, written: written, series: series), position: .before(local))
            }
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        for buffer in held { upstream.write(buffer, promise: nil) }
        held = []
        upstream.flush()
        connecting = false
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
        // Resume through the channel: this handler's context is gone once it is removed.
        channel.read()
        upstream.read()
    }
}
