import NIOCore
import NIOHTTP1

/// The HTTP/1.1 server half every sidecar listener uses, in order: the head timeout's byte watcher, NIO's
/// codec with our limits and pipelining, our protocol-error answer, and the head timeout's head watcher.
enum HTTPServerSetup {
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, limits: HTTPLimits) throws {
        let timeout = RequestHeadTimeout(limit: limits.requestHeadTimeout)
        try pipeline.addHandler(timeout.byteWatcher)
        try pipeline.configureHTTPServerPipeline(
            withErrorHandling: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits.decoderLimits)
        try pipeline.addHandler(HTTPProtocolErrorHandler())
        try pipeline.addHandler(timeout.headWatcher)
    }
}
