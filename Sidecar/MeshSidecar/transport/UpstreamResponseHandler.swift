import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the exchange that leased it (on the same event loop).
protocol UpstreamResponseSink: AnyObject {
    var downstreamWritable: Bool { get }
    func upstreamRead(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(_ writable: Bool)
    /// The upstream connection failed or closed.
    func upstreamClosed(_ error: (any Error)?)
}

/// Last handler of an upstream connection or stream: hands responses to the exchange that leased it, and reads
/// only while the client can take more (backpressure). The pool hands it out with its channel, so nobody looks
/// it up by type.
final class UpstreamResponseHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange using this connection; nil while pooled.
    weak var sink: (any UpstreamResponseSink)?
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

    /// Called when the client drained; resumes a held read.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }
}
