import NIOCore
import Prometheus

/// Counts the bytes a relayed connection carries, read from it and written to it, into its peer's counters, and
/// keeps the peer's series from being dropped as idle while the relay is open.
final class ByteCounter: ChannelDuplexHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let read: Counter
    let written: Counter
    let series: PeerMetrics.Series

    /// `read`: bytes read from this connection; `written`: bytes written to it.
    init(read: Counter, written: Counter, series: PeerMetrics.Series) {
        self.read = read
        self.written = written
        self.series = series
    }

    func handlerAdded(context: ChannelHandlerContext) { series.relays.add(1, ordering: .relaxed) }

    func handlerRemoved(context: ChannelHandlerContext) { series.relays.subtract(1, ordering: .relaxed) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        read.increment(by: Int64(unwrapInboundIn(data).readableBytes))
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        written.increment(by: Int64(unwrapOutboundIn(data).readableBytes))
        context.write(data, promise: promise)
    }
}
