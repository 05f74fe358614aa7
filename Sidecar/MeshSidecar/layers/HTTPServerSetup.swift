import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The HTTP server half every sidecar listener uses. Either version ends, per request, in the direction's
/// forwarding handler fed `HTTPServerRequestPart`s: HTTP/1.1 per connection, HTTP/2 per stream.
enum HTTPServerSetup {
    /// What the forwarder sits behind: an HTTP/1.1 connection (whose HTTP handlers step aside if it becomes a
    /// tunnel) or one HTTP/2 stream.
    enum Downstream {
        case http1(httpHandlers: [any RemovableChannelHandler])
        case http2Stream

        var httpHandlers: [any RemovableChannelHandler] {
            if case .http1(let handlers) = self { handlers } else { [] }
        }
    }

    /// Makes the handler that forwards the requests of one HTTP/1.1 connection or one HTTP/2 stream.
    typealias Forwarder = @Sendable (any Channel, Downstream) -> any ChannelHandler

    /// HTTP/2 frames up to this size are accepted (and, once the peer says so, sent): a header block inside the
    /// header limits then always fits in one frame. NIO sends a header block as one HEADERS frame, never with
    /// CONTINUATION, and fails the whole connection when it exceeds the peer's SETTINGS_MAX_FRAME_SIZE — one
    /// large head used to take every request on a shared connection with it.
    static let http2MaxFrameSize = 256 * 1024

    /// HTTP/1.1, in order: the head timeout's byte watcher, NIO's codec with our limits (without its pipelining
    /// helper: the forwarder keeps pipelined requests in order itself, with no read-interest change per request),
    /// our protocol-error answer, the head timeout's head watcher, the forwarder.
    static func configureHTTP1(_ channel: any Channel, limits: HTTPLimits, forwarder: Forwarder) throws {
        let pipeline = channel.pipeline.syncOperations
        let timeout = RequestHeadTimeout(limit: limits.requestHeadTimeout)
        let byteWatcher = timeout.byteWatcher
        try pipeline.addHandler(byteWatcher)
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits.decoderLimits)
        // Recorded once here, at assembly, so a tunnel removes exactly these and nothing added later.
        var handlers: [any RemovableChannelHandler] = [byteWatcher]
        handlers.append(try pipeline.handler(type: HTTPResponseEncoder.self))
        handlers.append(try pipeline.handler(type: NIOHTTPResponseHeadersValidator.self))
        let errors = HTTPProtocolErrorHandler()
        let headWatcher = timeout.headWatcher
        try pipeline.addHandler(errors)
        try pipeline.addHandler(headWatcher)
        handlers += [errors, headWatcher]
        // Last: the decoder goes once everything behind it has (NIO's server decoder drops what follows).
        handlers.append(try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
        try pipeline.addHandler(forwarder(channel, .http1(httpHandlers: handlers)))
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
            HTTP2Setting(parameter: .maxFrameSize, value: http2MaxFrameSize),
        ]
        let handler = NIOHTTP2Handler(
            mode: .server, eventLoop: channel.eventLoop, connectionConfiguration: connection,
            streamConfiguration: .init(), streamDelegate: manager.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                try stream.pipeline.syncOperations.addHandler(forwarder(stream, .http2Stream))
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
