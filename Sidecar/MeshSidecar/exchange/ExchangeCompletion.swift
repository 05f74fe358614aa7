import NIOCore

/// The one event every HTTP exchange ends in, whatever happened: the response went out, the sidecar answered
/// with its own error, a stream was reset, the client went away, or the connection became a tunnel. Metrics and
/// the destination's balancer read it now; spans, access logs and the retry budget will read the same event.
struct ExchangeCompletion: Sendable {
    enum Outcome: Sendable, Equatable {
        /// The upstream's response reached the client in full.
        case responded(status: Int)
        /// The sidecar answered itself (`x-mesh-error: cause`) with `status`.
        case failed(ProxyError.Cause, status: Int)
        /// The upstream went away after the response had started: the client's stream or connection was reset.
        case upstreamReset(status: Int)
        /// The sidecar cut the exchange off after the response had started (a timeout): the client's stream or
        /// connection was reset.
        case cutShort(status: Int)
        /// The client went away before its response was complete.
        case downstreamClosed
        /// `101 Switching Protocols`: the exchange became a byte tunnel.
        case upgraded
    }

    let direction: Direction
    let outcome: Outcome
    /// When the request head arrived, when the final response head was sent (if it was), when it ended.
    let started: NIODeadline
    let responseStarted: NIODeadline?
    let ended: NIODeadline
    /// Body bytes: request as read from the client, response as written to it.
    let requestBytes: Int
    let responseBytes: Int
    /// The endpoint that served the last attempt (nil when none was reached, or for the local app's address).
    let endpoint: EndpointTarget?
    /// How many times the request was sent upstream (a replay after a stale pooled connection counts), and how
    /// many of those were retries.
    let attempts: Int
    var retries = 0
    /// A retry was wanted and the destination's retry budget refused it.
    var budgetExhausted = false
    /// Which limit ended the exchange, if a timeout did.
    var timeout: ProxyError.Timeout?

    var duration: Duration { .nanoseconds((ended - started).nanoseconds) }

    /// The status the client saw (0 when it saw none).
    var status: Int {
        switch outcome {
        case .responded(let s), .failed(_, let s), .upstreamReset(let s), .cutShort(let s): s
        case .downstreamClosed: 0
        case .upgraded: 101
        }
    }

    /// What went wrong, as `x-mesh-error` names it (and `downstream_closed` for a client that left); nil when the
    /// exchange went through.
    var cause: String? {
        switch outcome {
        case .responded, .upgraded: nil
        case .failed(let cause, _): cause.rawValue
        case .upstreamReset: ProxyError.Cause.upstreamReset.rawValue
        case .cutShort: ProxyError.Cause.timeout.rawValue
        case .downstreamClosed: "downstream_closed"
        }
    }

    /// Whether the endpoint did its job, as a balancer counts it: it answered, and not with a 5xx.
    var endpointSucceeded: Bool {
        switch outcome {
        case .responded(let s): s < 500
        case .upgraded: true
        case .failed, .upstreamReset, .cutShort, .downstreamClosed: false
        }
    }
}
