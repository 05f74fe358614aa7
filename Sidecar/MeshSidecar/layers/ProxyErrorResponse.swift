import NIOCore
import NIOHTTP1

/// The one place that decides what a client sees for each proxy failure: HTTP status, `x-mesh-error`,
/// and for gRPC callers the matching `grpc-status` (linkerd2-proxy `errors/respond.rs`).
enum ProxyErrorResponse {
    static func status(for cause: ProxyError.Cause) -> HTTPResponseStatus {
        switch cause {
        case .noEndpoints, .unknownService, .discoveryUnavailable, .retriesExhausted, .retryBudgetExhausted,
            .circuitOpen, .policyUnavailable, .faultInjected:
            .serviceUnavailable
        case .authzDenied: .forbidden
        case .rateLimited: .tooManyRequests
        case .timeout: .gatewayTimeout
        case .connectFailed, .tlsPeerIdentityMismatch, .tlsHandshakeFailed, .upstreamReset: .badGateway
        case .invalidAuthority, .unsupportedRequest, .malformedRequest: .badRequest
        case .headerTooLarge: HTTPResponseStatus(statusCode: 431, reasonPhrase: "Request Header Fields Too Large")
        }
    }

    /// The status for one failure: a policy's choice (an injected abort) or the cause's.
    static func status(for error: ProxyError) -> HTTPResponseStatus {
        error.httpStatus.map { HTTPResponseStatus(statusCode: $0) } ?? status(for: error.cause)
    }

    /// gRPC status codes: UNAVAILABLE (14) where a retry elsewhere may work, DEADLINE_EXCEEDED (4) for timeouts,
    /// PERMISSION_DENIED (7) and RESOURCE_EXHAUSTED (8) for authorization and rate limits, INTERNAL (13) otherwise.
    static func grpcStatus(for cause: ProxyError.Cause) -> Int {
        switch cause {
        case .timeout: 4
        case .authzDenied: 7
        case .rateLimited: 8
        case .noEndpoints, .unknownService, .discoveryUnavailable, .connectFailed, .upstreamReset, .retriesExhausted,
            .retryBudgetExhausted, .circuitOpen, .policyUnavailable, .faultInjected:
            14
        case .tlsPeerIdentityMismatch, .tlsHandshakeFailed, .invalidAuthority, .unsupportedRequest, .headerTooLarge,
            .malformedRequest:
            13
        }
    }

    static let unprocessedHeader = "x-mesh-unprocessed"

    /// What the sidecar sends for a failure: a head, a body, and (for gRPC) trailers.
    struct Response {
        var head: HTTPResponseHead
        var body: String
        var trailers: HTTPHeaders?
        /// What happened, for the log.
        var detail: String = ""
    }

    /// The response for `error` to a request with `requestHeaders`. gRPC callers get what gRPC proxies send
    /// (HTTP 200, `application/grpc`, no messages, `grpc-status` and `grpc-message` in the trailers), so
    /// their client library reports the status; everyone else gets the HTTP status and a one-line body.
    /// `unprocessed`: the inbound sidecar answers for an app the request never reached, and says so
    /// (`x-mesh-unprocessed: true`), so the caller's sidecar may try another instance whatever the method.
    static func make(
        _ error: ProxyError, requestHeaders: HTTPHeaders, version: HTTPVersion, close: Bool, unprocessed: Bool = false
    ) -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "x-mesh-error", value: error.cause.rawValue)
        if unprocessed { headers.add(name: unprocessedHeader, value: "true") }
        if close { headers.add(name: "connection", value: "close") }
        if let wait = error.retryAfter {
            let seconds = max(1, (wait.nanoseconds + 999_999_999) / 1_000_000_000)
            headers.add(name: "retry-after", value: String(seconds))
        }
        if requestHeaders.first(name: "content-type")?.hasPrefix("application/grpc") == true {
            headers.add(name: "content-type", value: "application/grpc")
            let trailers: HTTPHeaders = [
                "grpc-status": String(error.grpcStatus ?? grpcStatus(for: error.cause)),
                "grpc-message": percentEncoded("meshwork: \(error.cause.rawValue): \(error.detail)"),
            ]
            return Response(
                head: HTTPResponseHead(version: version, status: .ok, headers: headers), body: "", trailers: trailers,
                detail: error.detail)
        }
        let body = "meshwork: \(error.cause.rawValue): \(error.detail)\n"
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.utf8.count))
        return Response(
            head: HTTPResponseHead(version: version, status: status(for: error), headers: headers), body: body,
            detail: error.detail)
    }

    /// gRPC's percent-encoding of `grpc-message`: printable ASCII except `%` stays, everything else is %XX.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7e, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += (byte < 0x10 ? "%0" : "%") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
