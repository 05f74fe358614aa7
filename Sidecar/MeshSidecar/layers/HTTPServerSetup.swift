import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The HTTP server half every sidecar listener uses. Either version ends, per request, in the direction's
/// forwarding handler fed `HTTPServerRequestPart`s: HTTP/1.1 per connection, HTTP/2 per stream.
enum HTTPServerSetup {
    /// Makes the handler that forwards the requests of one HTTP/1.1 connection or one HTTP/2 stream.
    typealias Forwarder = @Sendable (any Channel) -> any ChannelHandler

    /// HTTP/1.1, in order: the head timeout's byte watcher, NIO's codec with our limits and pipelining, our
    /// protocol-error answer, the head timeout's head watcher, the forwarder.
    static func configureHTTP1(_ channel: any Channel, limits: HTTPLimits, forwarder: Forwarder) throws {
        let pipeline = channel.pipeline.syncOperations
        let timeout = RequestHeadTimeout(limit: limits.requestHeadTimeout)
        try pipeline.addHandler(timeout.byteWatcher)
        try pipeline.configureHTTPServerPipeline(
            withErrorHandling: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits.decoderLimits)
        try pipeline.addHandler(HTTPProtocolErrorHandler())
        try pipeline.addHandler(timeout.headWatcher)
        try pipeline.addHandler(forwarder(channel))
    }

    /// HTTP/2: NIO's handler (protocol violations end the connection with GOAWAY and the matching error
    /// code), a connection manager that answers a drain with a graceful GOAWAY and closes once the streams
    /// are done, and per stream the HTTP/1-style codec and the forwarder.
    static func configureHTTP2(_ channel: any Channel, limits: HTTPLimits, forwarder: @escaping Forwarder) throws {
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil))
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderBytes),
        ]
        let handler = NIOHTTP2Handler(
            mode: .server, eventLoop: channel.eventLoop, connectionConfiguration: connection,
            streamConfiguration: .init(), streamDelegate: manager.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try stream.pipeline.syncOperations.addHandler(forwarder(stream))
            }
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(manager)
        try channel.pipeline.syncOperations.addHandler(CloseOnErrorHandler())
    }

    /// A plaintext listener serving both: HTTP/2 by prior knowledge when the client opens with the
    /// HTTP/2 preface, HTTP/1.1 otherwise.
    static func configureSniffing(_ channel: any Channel, limits: HTTPLimits, forwarder: @escaping Forwarder) throws {
        try channel.pipeline.syncOperations.addHandler(
            HTTPVersionSniffer(timeout: limits.requestHeadTimeout) { channel, version in
                switch version {
                case .http1: try configureHTTP1(channel, limits: limits, forwarder: forwarder)
                case .http2: try configureHTTP2(channel, limits: limits, forwarder: forwarder)
                }
            })
    }
}
