/// A failure the sidecar itself generates on a request. The cause is the stable name users see in
/// `x-mesh-error`; `ProxyErrorResponse` decides everything else a client sees.
struct ProxyError: Error, Sendable, CustomStringConvertible {
    enum Cause: String, Sendable, CaseIterable {
        case noEndpoints = "no_endpoints"
        case unknownService = "unknown_service"
        case discoveryUnavailable = "discovery_unavailable"
        case connectFailed = "connect_failed"
        case tlsPeerIdentityMismatch = "tls_peer_identity_mismatch"
        case tlsHandshakeFailed = "tls_handshake_failed"
        case upstreamReset = "upstream_reset"
        case invalidAuthority = "invalid_authority"
        case unsupportedRequest = "unsupported_request"
        case headerTooLarge = "header_too_large"
        case malformedRequest = "malformed_request"
    }

    let cause: Cause
    let detail: String

    init(_ cause: Cause, _ detail: String) {
        self.cause = cause
        self.detail = detail
    }

    var description: String { "\(cause.rawValue): \(detail)" }
}
