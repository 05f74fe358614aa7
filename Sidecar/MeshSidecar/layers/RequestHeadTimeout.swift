import NIOCore
import NIOHTTP1

/// Closes a connection whose request head is still incomplete `limit` after its first byte arrived
/// (slowloris). Idle keep-alive connections are not affected: the clock starts with a request's first
/// byte. Two handler facades share one state: one before the decoder sees bytes, one after it sees heads.
final class RequestHeadTimeout: @unchecked Sendable {
    let limit: TimeAmount
    private var awaitingHead = true
    private var timer: Scheduled<Void>?

    init(limit: TimeAmount) { self.limit = limit }

    var byteWatcher: ByteWatcher { ByteWatcher(self) }
    var headWatcher: HeadWatcher { HeadWatcher(self) }

    fileprivate func bytesArrived(_ context: ChannelHandlerContext) {
        guard awaitingHead, timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }

    fileprivate func headArrived() {
        awaitingHead = false
        timer?.cancel()
        timer = nil
    }

    fileprivate func responseEnded() { awaitingHead = true }

    fileprivate func stop() {
        timer?.cancel()
        timer = nil
    }

    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        private let state: RequestHeadTimeout
        init(_ state: RequestHeadTimeout) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            state.bytesArrived(context)
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.stop()
            context.fireChannelInactive()
        }
    }

    final class HeadWatcher: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        typealias OutboundOut = HTTPServerResponsePart
        private let state: RequestHeadTimeout
        init(_ state: RequestHeadTimeout) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) { state.headArrived() }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { state.responseEnded() }
            context.write(data, promise: promise)
        }
    }
}
