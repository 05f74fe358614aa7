import NIOHTTP1

/// How one try of a request failed, before any of its response reached the client.
enum AttemptFailure: Equatable {
    /// Provably never reached the app: no connection, a refused or GOAWAY'd stream, or the peer's sidecar
    /// answering that it could not reach its app (`x-mesh-unprocessed`).
    case unsent
    /// The connection or stream went away after the request was written, before the response began.
    /// `pooled`: it was an idle keep-alive connection — the race with the server's idle timeout.
    case reset(pooled: Bool)
    case perTryTimeout
    /// A final response head with this status, not yet forwarded.
    case status(Int)
    /// A trailers-only gRPC response with this `grpc-status`.
    case grpc(Int)
}

extension RetryRules {
    /// Whether `failure` may be retried for `request` as a matter of safety and policy (attempts, budget,
    /// deadline and a kept body are checked by the exchange).
    func allows(_ failure: AttemptFailure, for request: HTTPRequestHead, isGRPC: Bool) -> Bool {
        switch failure {
        case .unsent: onUnsent
        case .reset(let pooled): mayReplay(request) && (onReset || pooled)
        // Setting perTryTimeout is the policy's word that a try cut off may be tried again.
        case .perTryTimeout: mayReplay(request)
        case .status(let status): mayReplay(request) && retries(status: status)
        // gRPC calls are all POSTs: the codes a policy lists are its statement that they are safe to retry.
        case .grpc(let code): isGRPC && retries(grpc: code)
        }
    }

    /// The rules for the inbound direction, toward the local app: one more try, only when a pooled connection
    /// was stale. An app that cannot be reached is answered at once, saying so, and the caller's sidecar tries
    /// another instance.
    static let inbound = RetryRules(
        attempts: 1, onUnsent: false, backoffBase: .milliseconds(1), backoffMax: .milliseconds(1),
        bufferBytes: 64 * 1024, budgetPercent: 100, budgetMinPerSecond: 0)
}
