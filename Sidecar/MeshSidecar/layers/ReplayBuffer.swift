import NIOCore
import NIOHTTP1

/// The parts of one request kept so it can be sent again on a fresh connection when a *reused* keep-alive
/// connection turns out to have been closed by the server before any response byte — the race every
/// pool has with servers' idle timeouts. Only idempotent methods (RFC 9110 §9.2.2) with small bodies are
/// kept; anything else is never replayed.
struct ReplayBuffer {
    static let idempotent: [HTTPMethod] = [.GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE]

    private(set) var parts: [HTTPClientRequestPart]?
    private var bytes = 0
    let limit: Int

    init(head: HTTPRequestHead, limit: Int = 64 * 1024) {
        self.limit = limit
        parts = Self.idempotent.contains(head.method) ? [.head(head)] : nil
    }

    mutating func append(_ part: HTTPClientRequestPart) {
        guard parts != nil else { return }
        if case .body(.byteBuffer(let buffer)) = part {
            bytes += buffer.readableBytes
            if bytes > limit {
                parts = nil
                return
            }
        }
        parts?.append(part)
    }

    /// The whole request, if it may be replayed: kept, and complete.
    var replayable: [HTTPClientRequestPart]? {
        guard let parts, case .end = parts.last else { return nil }
        return parts
    }

    /// Once any response byte arrived, the request reached the app: never replay.
    mutating func discard() { parts = nil }
}
