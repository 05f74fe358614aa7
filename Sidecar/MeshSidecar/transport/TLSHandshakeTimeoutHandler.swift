import NIOCore
import NIOTLS

/// Closes an inbound connection whose TLS handshake has not completed within `limit` of accept, so a
/// client that stalls the handshake holds no resources for long; reports handshakes that fail.
final class TLSHandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let limit: TimeAmount
    private let onFailure: @Sendable () -> Void
    private var timer: Scheduled<Void>?
    private var failed = false

    init(limit: TimeAmount, onFailure: @escaping @Sendable () -> Void = {}) {
        self.limit = limit
        self.onFailure = onFailure
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Still here, so the handshake has not completed: this error ended it.
        if !failed {
            failed = true
            onFailure()
        }
        context.fireErrorCaught(error)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Pass the event on first: once removed, this handler's context no longer reaches the rest.
        context.fireUserInboundEventTriggered(event)
        if case .handshakeCompleted = event as? TLSUserEvent {
            timer?.cancel()
            timer = nil
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }
}
