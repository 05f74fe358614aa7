import NIOCore

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
        case timeout
        case retriesExhausted = "retries_exhausted"
        case retryBudgetExhausted = "retry_budget_exhausted"
        case circuitOpen = "circuit_open"
        case invalidAuthority = "invalid_authority"
        case unsupportedRequest = "unsupported_request"
        case headerTooLarge = "header_too_large"
        case malformedRequest = "malformed_request"
        case authzDenied = "authz_denied"
        case rateLimited = "rate_limited"
        case faultInjected = "fault_injected"
        case policyUnavailable = "policy_unavailable"

        /// Failures to reach an endpoint at all: the request cannot have reached its app, so it may be tried
        /// elsewhere whatever its method.
        var isConnectFailure: Bool {
            switch self {
            case .connectFailed, .tlsPeerIdentityMismatch, .tlsHandshakeFailed: true
            default: false
            }
        }
    }

    /// Which limit ran out, for `timeout` failures (a log field and a metric label).
    enum Timeout: String, Sendable, CaseIterable {
        /// The policy's `timeouts.request`, all tries included.
        case request
        /// The caller's deadline, propagated from the previous hop or the app (`x-mesh-timeout-ms`, `grpc-timeout`).
        case deadline
        case perTry = "per_try"
        case connect
        case idle
    }

    let cause: Cause
    let detail: String
    let timeout: Timeout?
    /// The statuses a policy chose (an injected abort's), instead of the cause's own.
    var httpStatus: Int?
    var grpcStatus: Int?
    /// For `rate_limited`: when a request would be admitted again (`retry-after`, whole seconds rounded up).
    var retryAfter: TimeAmount?

    init(_ cause: Cause, _ detail: String, timeout: Timeout? = nil) {
        self.cause = cause
        self.detail = detail
        self.timeout = timeout
    }

    static func timedOut(_ kind: Timeout, _ detail: String) -> ProxyError {
        ProxyError(.timeout, detail, timeout: kind)
    }

    /// A connect timeout is a connect failure too: retried elsewhere, whatever the method.
    var isConnectFailure: Bool { cause.isConnectFailure || timeout == .connect }

    var description: String { "\(cause.rawValue): \(detail)" }
}
