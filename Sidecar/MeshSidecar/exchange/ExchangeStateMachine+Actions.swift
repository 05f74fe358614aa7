import NIOCore
import NIOHTTP1

/// What `ExchangeStateMachine` is configured with and what it asks its handler to do.
extension ExchangeStateMachine {
    struct Limits {
        /// Pipelined requests (heads) kept before reads stop.
        var pipelinedRequests = 16
        /// Bytes held while routing, or queued behind the active exchange, before reads stop.
        var heldBytes = 64 * 1024
        /// Pipelined requests beyond which the client is abusive: one read can decode thousands of tiny
        /// requests. The queued ones are answered, nothing more is taken, and the connection closes.
        var pipelinedRequestsCap = 128
    }

    enum Action {
        case none
        /// Route this (hop-by-hop-stripped, HTTP/1.1) head; answer with `routed` or `failed`, with the step.
        case route(HTTPRequestHead, step: Int)
        /// Lease a connection to the endpoint (of its own for an upgrade); answer with `attached` or `failed`.
        /// `fresh`: a new connection (the last one was a stale pooled one), not an idle one.
        case acquire(EndpointTarget, upgrade: Bool, fresh: Bool, step: Int)
        /// A try failed and will be retried: settle `Finish` (the try's upstream and report), then wait for the
        /// timer (`nextDue`), which answers with `repick`.
        case retry(Finish)
        /// Pick an endpoint for the retry, preferring one not in `excluding` (those already tried); answer with
        /// `retryTo` or `failed`.
        case repick(excluding: [EndpointTarget], step: Int)
        /// Write the request's head and all parts held so far to the new upstream, and flush.
        case sendFirst(HTTPRequestHead, [HTTPClientRequestPart])
        /// Write one more part to the attached upstream.
        case send(HTTPClientRequestPart, flush: Bool)
        /// Write a response head (1xx or final) to the client.
        case writeHead(HTTPResponseHead)
        case writeBody(ByteBuffer)
        /// A head held back (a gRPC answer's, until its first message or end) and what released it.
        case writeHeadAndBody(HTTPResponseHead, ByteBuffer)
        case writeHeadAndEnd(HTTPResponseHead, HTTPHeaders?, Finish)
        /// The last part of the response (the upstream's, or the sidecar's own error response), then `finish`.
        case writeEnd(HTTPHeaders?, Finish)
        case respond(ProxyErrorResponse.Response, Finish)
        /// Turn the downstream and the upstream into a byte tunnel (after the 101's end was written).
        case splice(Finish)
        /// Close the client's connection (or reset its stream): a response started and cannot be completed.
        case reset(Finish)
        /// A connection arrived for an exchange that is gone: give it back unused.
        case releaseUnused
        /// A request finished after its response: the exchange is over (close the connection if `close`).
        case exchangeDone(close: Bool)
        case close
    }

    /// What follows the last response write: the upstream's fate, the completion event, and the connection's.
    struct Finish {
        enum Upstream {
            case none, release(reusable: Bool)
            var isNone: Bool { if case .none = self { true } else { false } }
        }
        var upstream: Upstream
        var completion: ExchangeCompletion?
        /// Close the client connection once the write is done.
        var closeAfter: Bool
        /// How the try ended, for the balancer (nil when no endpoint was tried).
        var attempt: AttemptReport? = nil
    }
}

extension ExchangeStateMachine.Action {
    /// Whether performing it can change the machine's `nextDue` or the idle checks.
    var movesTimers: Bool {
        switch self {
        case .none, .send, .writeHead, .writeBody, .writeHeadAndBody: false
        default: true
        }
    }
}
