import NIOCore
import NIOHTTP1

/// The HTTP/1.1 client half of every upstream connection: NIO's encoder and decoder, with 1xx responses
/// (100 Continue, 103 Early Hints) forwarded rather than dropped, so they reach the client as HTTP allows;
/// bytes that follow a 101 (an upgraded connection) are passed on when the decoder is removed.
enum HTTPClientSetup {
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(HTTPRequestEncoder())
        try pipeline.addHandler(
            ByteToMessageHandler(
                HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)))
        try pipeline.addHandler(NIOHTTPRequestHeadersValidator())
        try pipeline.addHandler(UpstreamResponseHandler())
    }
}
