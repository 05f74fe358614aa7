import NIOHTTP1

/// The one place that decides what a client sees for each proxy failure: HTTP status, `x-mesh-error`,
/// and for gRPC callers the matching `grpc-status` (linkerd2-proxy `errors/respond.rs`).
enum ProxyErrorResponse {
    static func status(for cause: ProxyError.Cause) -> HTTPResponseStatus {
        switch cause {
        case .noEndpoints, .unknownService, .discoveryUnavailable: .serviceUnavailable
        case .connectFailed, .tlsPeerIdentityMismatch, .tlsHandshakeFailed, .upstreamReset: .badGateway
        case .invalidAuthority, .unsupportedRequest, .malformedRequest: .badRequest
        case .headerTooLarge: HTTPResponseStatus(statusCode: 431, reasonPhrase: "Request Header Fields Too Large")
        }
    }

    /// gRPC status codes: UNAVAILABLE (14) where a retry elsewhere may work, INTERNAL (13) otherwise.
    static func grpcStatus(for cause: ProxyError.Cause) -> Int {
        switch cause {
        case .noEndpoints, .unknownService, .discoveryUnavailable, .connectFailed, .upstreamReset: 14
        case .tlsPeerIdentityMismatch, .tlsHandshakeFailed, .invalidAuthority, .unsupportedRequest, .headerTooLarge,
            .malformedRequest:
            13
        }
    }

    /// Head and body of the response for `error` to a request with `requestHeaders`.
    static func make(_ error: ProxyError, requestHeaders: HTTPHeaders, version: HTTPVersion, close: Bool) -> (
        HTTPResponseHead, String
    ) {
        let body = "meshwork: \(error.cause.rawValue): \(error.detail)\n"
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "x-mesh-error", value: error.cause.rawValue)
        if requestHeaders.first(name: "content-type")?.hasPrefix("application/grpc") == true {
            headers.add(name: "grpc-status", value: String(grpcStatus(for: error.cause)))
            headers.add(name: "grpc-message", value: error.cause.rawValue)
        }
        if close { headers.add(name: "connection", value: "close") }
        return (HTTPResponseHead(version: version, status: status(for: error.cause), headers: headers), body)
    }
}
