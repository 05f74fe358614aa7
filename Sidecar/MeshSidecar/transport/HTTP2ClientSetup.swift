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

    static func configure(_ channel: any Channel) throws -> NIOHTTP2Handler.StreamMultiplexer {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = settings
        let handler = NIOHTTP2Handler(
            mode: .client, eventLoop: channel.eventLoop, connectionConfiguration: connection,
            streamConfiguration: .init()
        ) { stream in
            // Push is disabled in our settings; a peer that opens a stream anyway gets it closed.
            stream.close()
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(GoAwayWatcher())
        try channel.pipeline.syncOperations.addHandler(CloseOnErrorHandler())
        return try handler.syncMultiplexer()
    }

    /// Opens one request stream on an HTTP/2 connection.
    static func openStream(_ multiplexer: NIOHTTP2Handler.StreamMultiplexer) -> EventLoopFuture<any Channel> {
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                let ops = stream.pipeline.syncOperations
                try ops.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                try ops.addHandler(UpstreamResponseHandler())
            }
        }
    }

    /// Whether the peer has announced it will accept no new streams on this connection.
    static func goingAway(_ channel: any Channel) -> Bool {
        (try? channel.pipeline.syncOperations.handler(type: GoAwayWatcher.self).received) ?? true
    }
}

/// Remembers a GOAWAY from the peer.
final class GoAwayWatcher: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    private(set) var received = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload { received = true }
        context.fireChannelRead(data)
    }
}
