import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The HTTP/2 client half of an upstream connection: NIO's HTTP/2 handler, a watcher that notices the
/// peer's GOAWAY (so the pool stops opening streams on it), and per request a stream channel that speaks
/// HTTP/1-style parts, so the forwarding layer is the same for both versions.
enum HTTP2ClientSetup {
    static let settings: HTTP2Settings = [
        HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000),
        HTTP2Setting(parameter: .maxHeaderListSize, value: HTTPLimits().maxHeaderBytes),
        HTTP2Setting(parameter: .enablePush, value: 0),
    ]

    static func configure(_ channel: any Channel) throws -> HTTP2Session {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = settings
        let handler = NIOHTTP2Handler(
            mode: .client, eventLoop: channel.eventLoop, connectionConfiguration: connection,
            streamConfiguration: .init()
        ) { stream in
            // Push is disabled in our settings; a peer that opens a stream anyway gets it closed.
            stream.close()
        }
        let goAway = GoAwayWatcher()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(goAway)
        try channel.pipeline.syncOperations.addHandler(CloseOnErrorHandler())
        return HTTP2Session(multiplexer: try handler.syncMultiplexer(), goAway: goAway)
    }
}

/// The client side of one HTTP/2 connection, used on its event loop only.
struct HTTP2Session: Sendable {
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    let goAway: GoAwayWatcher

    /// Whether the peer has announced it will accept no new streams on this connection.
    var goingAway: Bool { goAway.received }

    /// Opens one request stream.
    func openStream() -> EventLoopFuture<any Channel> {
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                let ops = stream.pipeline.syncOperations
                try ops.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                try ops.addHandler(UpstreamResponseHandler())
            }
        }
    }

}

/// Remembers a GOAWAY from the peer (read and written on the connection's event loop only).
final class GoAwayWatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    private(set) var received = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload { received = true }
        context.fireChannelRead(data)
    }
}
