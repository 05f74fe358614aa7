import NIOCore
import NIOHTTP1

/// The HTTP/1.1 client half of every upstream connection: NIO's encoder and decoder, with 1xx responses
/// (100 Continue, 103 Early Hints) forwarded rather than dropped, so they reach the client as HTTP allows;
/// bytes that follow a 101 (an upgraded connection) are passed on when the decoder is removed.
enum HTTPClientSetup {
    struct Handlers {
        let responses: UpstreamResponseHandler
        /// In the order to remove them for a tunnel: the decoder last (it hands on bytes that followed the 101).
        let http: [any RemovableChannelHandler]
    }

    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations) throws -> Handlers {
        let encoder = HTTPRequestEncoder()
        let decoder = ByteToMessageHandler(
            HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward))
        let validator = NIOHTTPRequestHeadersValidator()
        let responses = UpstreamResponseHandler()
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(validator)
        try pipeline.addHandler(responses)
        return Handlers(responses: responses, http: [responses, validator, encoder, decoder])
    }
}
