import NIOCore
import NIOHTTP1

/// The body of one request, kept so the request can be sent again — after a pooled connection turned out to be
/// stale, or for a retry — up to a bound (the policy's `bufferBytes`, 64 KiB by default). Past the bound, or
/// once any response byte was forwarded, nothing is kept and the request cannot be sent again. Whether it
/// *may* be sent again (its method, the failure) is the retry rules' call, not this buffer's.
struct ReplayBuffer {
    private var body: [ByteBuffer] = []
    private var end: HTTPHeaders??
    private var bytes = 0
    private var discarded = false
    let limit: Int

    init(limit: Int) { self.limit = limit }

    mutating func append(_ part: HTTPClientRequestPart) {
        guard !discarded else { return }
        switch part {
        case .head: preconditionFailure("the head is kept by the exchange")
        case .body(.byteBuffer(let buffer)):
            bytes += buffer.readableBytes
            if bytes > limit {
                discard()
                return
            }
            body.append(buffer)
        case .body(.fileRegion): discard()
        case .end(let trailers): end = .some(trailers)
        }
    }

    /// The whole body and end, if the request can be sent again: kept, and complete.
    var replayable: [HTTPClientRequestPart]? {
        guard !discarded, let end else { return nil }
        return body.map { .body(.byteBuffer($0)) } + [.end(end)]
    }

    /// The request reached the app for good (a response is being forwarded), or is too big: keep nothing.
    mutating func discard() {
        discarded = true
        body = []
    }
}
