import NIOCore
import NIOHTTP1

/// The parts of requests a client pipelined behind the active exchange, in order, with how many heads and body
/// bytes they hold (what bounds them).
struct PipelinedRequests {
    private var parts = CircularBuffer<HTTPServerRequestPart>()
    private(set) var heads = 0
    private(set) var bytes = 0

    var isEmpty: Bool { parts.isEmpty }

    mutating func append(_ part: HTTPServerRequestPart) {
        switch part {
        case .head: heads += 1
        case .body(let buffer): bytes += buffer.readableBytes
        case .end: break
        }
        parts.append(part)
    }

    mutating func popFirst() -> HTTPServerRequestPart? {
        guard let part = parts.popFirst() else { return nil }
        switch part {
        case .head: heads -= 1
        case .body(let buffer): bytes -= buffer.readableBytes
        case .end: break
        }
        return part
    }
}
