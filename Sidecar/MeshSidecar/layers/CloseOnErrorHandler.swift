import NIOCore

/// Last handler of an HTTP/2 connection: NIO's HTTP/2 handler has already sent GOAWAY with the error's
/// code for a connection error; the connection then must close (RFC 9113 §5.4.1).
final class CloseOnErrorHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
