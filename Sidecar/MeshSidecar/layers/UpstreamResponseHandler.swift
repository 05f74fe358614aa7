import NIOCore
import NIOHTTP1

/// Last handler of an upstream connection: hands responses to the downstream exchange that leased the
/// connection, and only reads while the downstream can take more (backpressure).
final class UpstreamResponseHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange using this connection; nil while pooled.
    weak var sink: HTTPForwardingHandler?
    private var context: ChannelHandlerContext?
    private var readPending = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let sink else {
            // A response nobody asked for on an idle connection: the peer is confused; drop it.
            context.close(promise: nil)
            return
        }
        sink.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { sink?.upstreamReadComplete() }

    func channelInactive(context: ChannelHandlerContext) {
        sink?.upstreamClosed(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        sink?.upstreamClosed(error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.upstreamWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let sink, !sink.downstreamWritable {
            readPending = true
            return
        }
        context.read()
    }

    /// Called when the downstream drained; resumes a held read.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }
}
