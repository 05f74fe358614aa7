import NIOCore
import NIOHTTP1

/// The parts of one request kept so it can be sent again on a fresh connection when a *reused* keep-alive
/// connection turns out to have been closed by the server before any response byte — the race every
/// pool has with servers' idle timeouts. Only idempotent methods (RFC 9110 §9.2.2) with small bodies are
/// kept; anything else is never replayed. A request without a body costs no allocation here.
struct ReplayBuffer {
    static let idempotent: [HTTPMethod] = [.GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE]

    /// nil once the request may not be replayed (not idempotent, too large, or answered).
    private var head: HTTPRequestHead?
    private var body: [ByteBuffer] = []
    private var end: HTTPHeaders??
    private var bytes = 0
    let limit: Int

    init(head: HTTPRequestHead, limit: Int = 64 * 1024) {
        self.limit = limit
        self.head = Self.idempotent.contains(head.method) ? head : nil
    }

    mutating func append(_ part: HTTPClientRequestPart) {
        guard head != nil else { return }
        switch part {
        case .head: preconditionFailure("a request has one head")
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

    /// The whole request, if it may be replayed: kept, and complete.
    var replayable: [HTTPClientRequestPart]? {
        guard let head, let end else { return nil }
        return [.head(head)] + body.map { .body(.byteBuffer($0)) } + [.end(end)]
    }

    /// Once any response byte arrived, the request reached the app: never replay.
    mutating func discard() {
        head = nil
        body = []
    }
}
