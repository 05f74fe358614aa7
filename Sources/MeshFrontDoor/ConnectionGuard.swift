import NIOCore
import NIOTLS

/// Watches one accepted connection for the front door: closes it if it has not proven itself within the
/// handshake timeout (a completed TLS handshake, or on a plaintext listener its first byte), or once it has
/// carried no byte either way for the idle timeout. Sits right after TLS (or first, without TLS).
///
/// Nothing is scheduled per read or write: they set a flag, and one timer per connection ticks four times
/// per idle timeout, so an idle connection closes between 1 and 1.25 idle timeouts after its last byte.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    /// What proves a connection: its TLS handshake, or its first byte.
    enum Proof { case tlsHandshake, firstByte }

    private let gate: ConnectionGate
    private let proof: Proof
    private let onHandshakeFailure: (@Sendable (any Error) -> Void)?
    private var proven = false
    private var handshakeFailed = false
    private var carried = false
    private var silentTicks = 0
    private var timer: Scheduled<Void>?

    init(gate: ConnectionGate, proof: Proof, onHandshakeFailure: (@Sendable (any Error) -> Void)? = nil) {
        self.gate = gate
        self.proof = proof
        self.onHandshakeFailure = onHandshakeFailure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        carried = true
        if proof == .firstByte && !proven { prove(context.channel) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        carried = true
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, !proven { prove(context.channel) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Before the handshake completed, an error here is what ended it.
        if proof == .tlsHandshake, !proven, !handshakeFailed {
            handshakeFailed = true
            onHandshakeFailure?(error)
        }
        context.fireErrorCaught(error)
    }

    private func prove(_ channel: any Channel) {
        proven = true
        gate.proven(channel)
    }

    private func start(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        let handshake = TimeAmount(gate.limits.handshakeTimeout)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: handshake) { [self] in
            guard proven else {
                gate.report(.handshakeTimeout)
                channel.close(promise: nil)
                return
            }
            tick(channel)
        }
    }

    private func tick(_ channel: any Channel) {
        if carried {
            carried = false
            silentTicks = 0
        } else {
            silentTicks += 1
            if silentTicks >= 4 {
                gate.report(.idleTimeout)
                channel.close(promise: nil)
                return
            }
        }
        let quarter = TimeAmount(gate.limits.idleTimeout / 4)
        timer = channel.eventLoop.assumeIsolated().scheduleTask(in: quarter) { [self] in tick(channel) }
    }
}
