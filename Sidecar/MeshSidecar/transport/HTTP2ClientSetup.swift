import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The HTTP/2 client half of an upstream connection: NIO's HTTP/2 handler, a watcher that notices the
/// peer's SETTINGS (the connection is handed out only once they arrived, so the first request already uses the
/// peer's frame size) and GOAWAY (so the pool stops opening streams on it), and per request a stream channel that
/// speaks HTTP/1-style parts, so the forwarding layer is the same for both versions.
enum HTTP2ClientSetup {
    static let settings: HTTP2Settings = [
        HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000),
        HTTP2Setting(parameter: .maxHeaderListSize, value: HTTPLimits().maxHeaderBytes),
        HTTP2Setting(parameter: .enablePush, value: 0),
        HTTP2Setting(parameter: .maxFrameSize, value: HTTPServerSetup.http2MaxFrameSize),
    ]
    /// How long a new connection may take to send its SETTINGS before it is given up.
    static let settingsTimeout = TimeAmount.seconds(5)

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
        let goAway = GoAwayWatcher(settings: channel.eventLoop.makePromise())
        let timeout = channel.eventLoop.scheduleTask(in: settingsTimeout) { channel.close(promise: nil) }
        goAway.settings.futureResult.whenComplete { _ in timeout.cancel() }
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

    /// Succeeds once the peer's first SETTINGS arrived (and took effect).
    var ready: EventLoopFuture<Void> { goAway.settings.futureResult }

    /// Opens one request stream, for `target`.
    func openStream(to target: EndpointTarget, reused: Bool) -> EventLoopFuture<UpstreamLease> {
        let responses = UpstreamResponseHandler()
        return multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                let ops = stream.pipeline.syncOperations
                try ops.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                try ops.addHandler(responses)
            }
        }.map {
            UpstreamLease(
                channel: $0, responses: responses, target: target, reused: reused, httpHandlers: [], poolable: false)
        }
    }

}

/// Remembers a GOAWAY from the peer and completes `settings` on its first SETTINGS (read and written on the
/// connection's event loop only).
final class GoAwayWatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame
    private(set) var received = false
    let settings: EventLoopPromise<Void>
    private var settled = false

    init(settings: EventLoopPromise<Void>) { self.settings = settings }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data).payload {
        case .goAway: received = true
        case .settings(.settings) where !settled:
            settled = true
            settings.succeed()
        default: break
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !settled {
            settled = true
            settings.fail(ChannelError.ioOnClosedChannel)
        }
        context.fireChannelInactive()
    }
}
