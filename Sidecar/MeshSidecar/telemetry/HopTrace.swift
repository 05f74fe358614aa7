import NIOHTTP1
import Tracing

/// One exchange's part in its trace, kept by the forwarder from routing to completion: the context the request
/// came with, this hop's own (its span's, when sampled), and the context the current try sends on (an attempt
/// span's on the caller's side, when sampled).
struct HopTrace {
    /// The request as the client sent it (for the access log).
    let request: HTTPRequestHead
    let incoming: TraceHeaders.Incoming
    let hop: TraceContext
    private(set) var next: TraceContext
    private(set) var span: (any Span)?
    private var attemptSpan: (any Span)?
    private(set) var tries = 0

    /// Reads the request's trace context and decides: a parent's `sampled` flag is followed (parent-based), a
    /// root is sampled at `ratio`. Only a sampled hop with an exporter starts spans.
    init(
        _ head: HTTPRequestHead, direction: Direction, name: @autoclosure () -> String, ratio: Double,
        export: SpanExport?
    ) {
        request = head
        incoming = TraceHeaders.extract(head.headers)
        var parent: TraceContext?
        let sampled: Bool
        switch incoming {
        case .parent(let context, _):
            parent = context
            sampled = context.sampled
        case .decision(let decided):
            sampled = decided
        case .deferred(let context):
            parent = context
            sampled = Self.draw(ratio)
        case .none, .malformed:
            sampled = Self.draw(ratio)
        }
        parent?.sampled = sampled
        if sampled, let export {
            let (span, context) = export.startSpan(
                name(), kind: direction == .outbound ? .client : .server, parent: parent)
            self.span = span
            hop = context
        } else {
            hop = parent?.child() ?? .root(sampled: sampled)
        }
        next = hop
    }

    /// A new trace's sampling decision at `ratio`.
    static func draw(_ ratio: Double) -> Bool {
        ratio >= 1 || (ratio > 0 && Double(TraceIDs.next() >> 11) < ratio * Double(1 << 53))
    }

    /// A try begins (an endpoint was picked for it): on the caller's side of a sampled hop it gets a span of its
    /// own, a child of the hop's, so a try that never reached a connection (refused, timed out) is in the trace
    /// too. Whether it started one.
    @discardableResult
    mutating func startTry(endpoint: EndpointTarget, export: SpanExport?) -> Bool {
        tries += 1
        guard span != nil, let export, endpoint.identity != nil else { return false }
        endAttempt(result: .neutral)
        let (attempt, context) = export.startSpan("attempt \(tries)", kind: .client, parent: hop)
        var attributes = SpanAttributes()
        attributes.set("mesh.attempt", value: .int64(Int64(tries)))
        attributes.set("server.address", value: .string("\(endpoint.address)"))
        attempt.attributes = attributes
        attemptSpan = attempt
        next = context
        return true
    }

    /// The head of the try about to go carries the hop's context, or its attempt span's.
    func inject(into head: inout HTTPRequestHead) {
        TraceHeaders.write(next, into: &head.headers)
    }

    /// The forwarder went away with the exchange unfinished (its stream or connection was torn down): open spans
    /// are ended, so the tracer does not keep them.
    mutating func abandon() {
        endAttempt(result: .neutral)
        guard let span else { return }
        self.span = nil
        span.attributes["mesh.error.cause"] = "downstream_closed"
        span.setStatus(SpanStatus(code: .error, message: "the exchange ended without a response"))
        span.end()
    }

    /// The current try ended (as its balancer counts it).
    mutating func endAttempt(result: AttemptReport.Result) {
        guard let attempt = attemptSpan else { return }
        attemptSpan = nil
        attempt.attributes["mesh.attempt.result"] = "\(result)"
        if result == .failed { attempt.setStatus(SpanStatus(code: .error)) }
        attempt.end()
    }

    /// The exchange ended: the hop span gets what happened, and ends.
    mutating func finish(_ completion: ExchangeCompletion, peer: PeerLabels, route: String) {
        let head = request
        endAttempt(result: completion.endpointSucceeded ? .succeeded : .neutral)
        guard let span else { return }
        self.span = nil
        var a = SpanAttributes()
        a.set("mesh.direction", value: .string(completion.direction.rawValue))
        a.set("mesh.peer.service", value: .string(peer.service))
        if let identity = peer.identity { a.set("mesh.peer.identity", value: .string(identity)) }
        a.set("mesh.route", value: .string(route))
        a.set("http.request.method", value: .string(head.method.rawValue))
        a.set("url.path", value: .string(String(head.uri.prefix { $0 != "?" })))
        a.set("http.response.status_code", value: .int64(Int64(completion.status)))
        a.set("mesh.attempts", value: .int64(Int64(completion.attempts)))
        a.set("mesh.retries", value: .int64(Int64(completion.retries)))
        if let cause = completion.cause { a.set("mesh.error.cause", value: .string(cause)) }
        span.attributes = a
        if completion.cause != nil || completion.status >= 500 || completion.status == 0 {
            span.setStatus(SpanStatus(code: .error, message: completion.cause))
        }
        span.end()
    }
}

/// Who is at the other end of an exchange, as metrics, spans and logs name it.
struct PeerLabels: Sendable {
    /// The peer's service: the caller's (from its verified identity) inbound, the destination outbound;
    /// `unknown` when there is none (a caller without a workload identity, a destination that does not exist).
    var service: String
    /// The peer's SPIFFE ID: the verified caller's inbound, the one the destination must prove outbound.
    var identity: String?

    static let unknown = PeerLabels(service: "unknown", identity: nil)
}
