import NIOCore
import NIOHTTP1

/// Answers a request NIO could not parse — 431 `header_too_large` for oversized request lines or
/// headers, 400 `malformed_request` otherwise — through `ProxyErrorResponse`, then closes the connection: the
/// decoder cannot resume. The answer takes its place in line: requests the client pipelined before the bad one
/// are answered first (their responses are not cut short, nor is the error mistaken for one of them).
final class HTTPProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests passed on whose final response has not ended yet.
    private var unanswered = 0
    /// A request's head was passed on and its end not yet: a parse error now is about that request.
    private var requestOpen = false
    /// A final response head was written and its end not yet.
    private var responseOpen = false
    /// The error to answer once the requests before it are.
    private var deferred: ProxyError?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            requestOpen = true
        case .end: requestOpen = false
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        let proxyError =
            parserError == .headerOverflow
            ? ProxyError(.headerTooLarge, "request line or headers exceed the sidecar's limit")
            : ProxyError(.malformedRequest, "request is not valid HTTP/1.1 (\(parserError))")
        if requestOpen {
            // The request being read is broken: answer it if nothing else is owed first, else just close.
            if responseOpen || unanswered > 1 { context.close(promise: nil) } else { answer(proxyError, context) }
        } else if unanswered == 0 {
            answer(proxyError, context)
        } else if deferred == nil {
            deferred = proxyError
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            if head.status.code >= 200 { responseOpen = true }
            context.write(data, promise: promise)
            return
        case .body:
            context.write(data, promise: promise)
            return
        case .end:
            context.write(data, promise: promise)
        }
        responseOpen = false
        unanswered = max(0, unanswered - 1)
        if unanswered == 0, let error = deferred {
            deferred = nil
            answer(error, context)
        }
    }

    private func answer(_ error: ProxyError, _ context: ChannelHandlerContext) {
        let response = ProxyErrorResponse.make(error, requestHeaders: [:], version: .http1_1, close: true)
        context.write(wrapOutboundOut(.head(response.head)), promise: nil)
        context.write(
            wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
