import NIOCore
import NIOHTTP1

/// Closes a connection whose request head is still incomplete `limit` after its first byte arrived
/// (slowloris). Idle keep-alive connections are not affected: the clock starts with a request's first
/// byte. Two handler facades share one state: one before the decoder sees bytes, one after it sees heads.
///
/// The timer is lazy: a request only notes when its head started; one timer per connection, armed when a head
/// starts and none is armed, checks at its deadline and re-arms for the head then in progress (or lapses if
/// none is). Steady keep-alive traffic thus schedules about one timer per `limit`, not one per request.
final class RequestHeadTimeout: @unchecked Sendable {
    let limit: TimeAmount
    private var awaitingHead = true
    private var headStarted: NIODeadline?
    private var timer: Scheduled<Void>?

    init(limit: TimeAmount) { self.limit = limit }

    var byteWatcher: ByteWatcher { ByteWatcher(self) }
    var headWatcher: HeadWatcher { HeadWatcher(self) }

    fileprivate func bytesArrived(_ context: ChannelHandlerContext) {
        guard awaitingHead, headStarted == nil else { return }
        let now = context.eventLoop.now
        headStarted = now
        if timer == nil { arm(context.channel, at: now + limit) }
    }

    private func arm(_ channel: any Channel, at deadline: NIODeadline) {
        timer = channel.eventLoop.scheduleTask(deadline: deadline) { self.check(channel) }
    }

    private func check(_ channel: any Channel) {
        timer = nil
        guard awaitingHead, let started = headStarted else { return }
        let deadline = started + limit
        if deadline <= channel.eventLoop.now {
            channel.close(promise: nil)
        } else {
            arm(channel, at: deadline)
        }
    }

    fileprivate func headArrived() {
        awaitingHead = false
        headStarted = nil
    }

    /// The request is complete: the next byte starts the next request's head.
    fileprivate func requestEnded() { awaitingHead = true }

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

        func handlerRemoved(context: ChannelHandlerContext) { state.stop() }
    }

    final class HeadWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        private let state: RequestHeadTimeout
        init(_ state: RequestHeadTimeout) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: state.headArrived()
            case .end: state.requestEnded()
            case .body: break
            }
            context.fireChannelRead(data)
        }
    }
}
