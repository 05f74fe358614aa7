import NIOCore
import NIOHTTP1

/// After a `101 Switching Protocols` (WebSocket), the downstream HTTP/1.1 connection and its dedicated upstream
/// connection stop speaking HTTP: their HTTP handlers step aside and a glue pair relays bytes both ways, with
/// backpressure, until either side closes. Bytes the upstream sent right after its 101 are passed on.
enum UpgradeTunnel {
    static func splice(
        downstream: ChannelHandlerContext, forwarder: HTTPForwardingHandler, upstream: any Channel,
        responseHandler: UpstreamResponseHandler
    ) throws {
        // Both ends of the glue first: bytes the upstream sent after its 101 may be handed on the moment its
        // decoder goes, and they need somewhere to go.
        let (down, up) = GlueHandler.matchedPair()
        let d = downstream.pipeline.syncOperations
        let u = upstream.pipeline.syncOperations
        try d.addHandler(down)
        try u.addHandler(up)

        remove(RequestHeadTimeout.HeadWatcher.self, from: d)
        remove(RequestHeadTimeout.ByteWatcher.self, from: d)
        remove(HTTPProtocolErrorHandler.self, from: d)
        remove(HTTPServerPipelineHandler.self, from: d)
        remove(NIOHTTPResponseHeadersValidator.self, from: d)
        remove(HTTPResponseEncoder.self, from: d)
        remove(ByteToMessageHandler<HTTPRequestDecoder>.self, from: d)
        let client = downstream.channel
        d.removeHandler(context: downstream, promise: nil)

        u.removeHandler(responseHandler, promise: nil)
        remove(NIOHTTPRequestHeadersValidator.self, from: u)
        remove(HTTPRequestEncoder.self, from: u)
        // Last: once removed, it hands any bytes that followed the 101 to the glue.
        remove(ByteToMessageHandler<HTTPResponseDecoder>.self, from: u)
        // Bytes the decoder hands on as its removal completes (after this read's processing) get no
        // read-complete of their own: flush them once that is done.
        upstream.eventLoop.execute { client.flush() }
        client.read()
        upstream.read()
    }

    private static func remove<H: RemovableChannelHandler>(
        _ type: H.Type, from pipeline: ChannelPipeline.SynchronousOperations
    ) {
        if let context = try? pipeline.context(handlerType: type) {
            pipeline.removeHandler(context: context, promise: nil)
        }
    }
}
