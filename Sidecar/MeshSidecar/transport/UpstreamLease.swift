import NIOCore

/// One exchange's hold on an upstream: an HTTP/1.1 connection or an HTTP/2 stream, the handler that reports its
/// responses, and the endpoint it goes to. The pool hands it out and takes it back.
struct UpstreamLease {
    let channel: any Channel
    let responses: UpstreamResponseHandler
    let target: EndpointTarget
    /// Taken from the pool (an idle connection, or a stream on a live connection) rather than freshly connected.
    let reused: Bool
    /// The HTTP/1.1 client handlers, which step aside when the connection becomes a tunnel (empty for a stream).
    let httpHandlers: [any RemovableChannelHandler]
    /// A keep-alive connection the pool may keep (not a stream, not a connection of its own for an upgrade).
    var poolable: Bool = true
}

/// A lease available at once (an idle connection), or once a connection or stream opens.
enum Acquired {
    case ready(UpstreamLease)
    case pending(EventLoopFuture<UpstreamLease>)

    func future(on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamLease> {
        switch self {
        case .ready(let lease): eventLoop.makeSucceededFuture(lease)
        case .pending(let future): future
        }
    }
}
