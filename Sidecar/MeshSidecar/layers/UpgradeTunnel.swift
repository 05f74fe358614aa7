import NIOCore
import NIOHTTP1

/// After a `101 Switching Protocols` (WebSocket), the downstream HTTP/1.1 connection and its dedicated upstream
/// connection stop speaking HTTP: the HTTP handlers each side's assembly recorded step aside (and only those),
/// and a glue pair relays bytes both ways, with backpressure, until either side closes. Bytes the upstream sent
/// right after its 101 are passed on.
enum UpgradeTunnel {
    static func splice(
        downstream: ChannelHandlerContext, downstreamHTTP: [any RemovableChannelHandler],
        forwarder: any RemovableChannelHandler, upstream: UpstreamLease
    ) throws {
        // Both ends of the glue first: bytes the upstream sent after its 101 may be handed on the moment its
        // decoder goes, and they need somewhere to go.
        let (down, up) = GlueHandler.matchedPair()
        let d = downstream.pipeline.syncOperations
        let u = upstream.channel.pipeline.syncOperations
        try d.addHandler(down)
        try u.addHandler(up)
        for handler in downstreamHTTP { d.removeHandler(handler, promise: nil) }
        let client = downstream.channel
        d.removeHandler(forwarder, promise: nil)
        // The decoder is last in the list: once removed, it hands any bytes that followed the 101 to the glue.
        for handler in upstream.httpHandlers { u.removeHandler(handler, promise: nil) }
        // Bytes the decoder hands on as its removal completes (after this read's processing) get no
        // read-complete of their own: flush them once that is done.
        upstream.channel.eventLoop.execute { client.flush() }
        client.read()
        upstream.channel.read()
    }
}
