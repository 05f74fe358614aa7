import NIOCore
import Prometheus

/// Counts the bytes a relayed connection carries, read from it and written to it, into its peer's counters.
final class ByteCounter: ChannelDuplexHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let received: Counter
    let sent: Counter

    init(_ counters: (received: Counter, sent: Counter)) {
        received = counters.received
        sent = counters.sent
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.increment(by: Int64(unwrapInboundIn(data).readableBytes))
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        sent.increment(by: Int64(unwrapOutboundIn(data).readableBytes))
        context.write(data, promise: promise)
    }
}
