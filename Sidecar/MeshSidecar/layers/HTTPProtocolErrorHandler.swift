import NIOCore
import NIOHTTP1

/// Answers a request NIO could not parse — 431 `header_too_large` for oversized request lines or
/// headers, 400 `malformed_request` otherwise — through `ProxyErrorResponse` (only if no response has
/// started, as NIO's own handler does), then closes the connection: the decoder cannot resume.
final class HTTPProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseOpen = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !responseOpen {
            let proxyError =
                parserError == .headerOverflow
                ? ProxyError(.headerTooLarge, "request line or headers exceed the sidecar's limit")
                : ProxyError(.malformedRequest, "request is not valid HTTP/1.1 (\(parserError))")
            let response = ProxyErrorResponse.make(proxyError, requestHeaders: [:], version: .http1_1, close: true)
            context.write(wrapOutboundOut(.head(response.head)), promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))),
                promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseOpen = true
        case .end: responseOpen = false
        default: break
        }
        context.write(data, promise: promise)
    }
}
