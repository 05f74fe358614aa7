import MeshCore
import MeshPolicy
import NIOCore
import NIOHTTP1

/// A destination's retry policy compiled for the data path: which failures are retried, for which requests,
/// how often, and with what waits. Immutable and shared (a class: a request holds one reference, not a copy).
final class RetryRules: Sendable {
    /// Tries after the first.
    let attempts: Int
    let perTryTimeout: TimeAmount?
    let statuses: Set<Int>
    let statusClasses: Set<Int>
    let onReset: Bool
    /// Failures that never reached the app are retried (not on the inbound side: its caller tries elsewhere).
    let onUnsent: Bool
    let grpcCodes: Set<Int>
    let nonIdempotent: [RouteMatcher]
    let backoffBase: TimeAmount
    let backoffMax: TimeAmount
    let bufferBytes: Int
    let budgetPercent: Int
    let budgetMinPerSecond: Int

    static let grpcCodeNames = [
        "cancelled": 1, "deadline_exceeded": 4, "resource_exhausted": 8, "internal": 13, "unavailable": 14,
    ]

    init(
        attempts: Int, perTryTimeout: TimeAmount? = nil, statuses: Set<Int> = [], statusClasses: Set<Int> = [],
        onReset: Bool = false, onUnsent: Bool = true, grpcCodes: Set<Int> = [], nonIdempotent: [RouteMatch] = [],
        backoffBase: TimeAmount, backoffMax: TimeAmount, bufferBytes: Int, budgetPercent: Int, budgetMinPerSecond: Int
    ) {
        self.attempts = attempts
        self.perTryTimeout = perTryTimeout
        self.statuses = statuses
        self.statusClasses = statusClasses
        self.onReset = onReset
        self.onUnsent = onUnsent
        self.grpcCodes = grpcCodes
        self.nonIdempotent = nonIdempotent.map(RouteMatcher.init)
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.bufferBytes = bufferBytes
        self.budgetPercent = budgetPercent
        self.budgetMinPerSecond = budgetMinPerSecond
    }

    /// From a validated `retries` block (its durations and conditions are known to parse).
    convenience init(_ spec: TrafficPolicy.Retries) throws {
        var statuses: Set<Int> = []
        var classes: Set<Int> = []
        var grpc: Set<Int> = []
        var onReset = false
        for condition in spec.retryOn {
            switch condition {
            case "5xx": classes.insert(5)
            case "4xx": classes.insert(4)
            case "gateway_error": statuses.formUnion([502, 503, 504])
            case "reset": onReset = true
            default:
                if let code = Int(condition) {
                    statuses.insert(code)
                } else if let code = Self.grpcCodeNames[condition] {
                    grpc.insert(code)
                }
            }
        }
        self.init(
            attempts: spec.attempts, perTryTimeout: try spec.perTryTimeout.map { try TimeAmount(parsing: $0) },
            statuses: statuses, statusClasses: classes, onReset: onReset, grpcCodes: grpc,
            nonIdempotent: spec.nonIdempotent, backoffBase: try TimeAmount(parsing: spec.backoff.base),
            backoffMax: try TimeAmount(parsing: spec.backoff.max), bufferBytes: spec.bufferBytes,
            budgetPercent: spec.budget.percent, budgetMinPerSecond: spec.budget.minPerSecond)
    }

    /// Whether a request may be sent again after it may have reached the app: an idempotent method, or a
    /// route the policy names (gRPC calls, all POSTs, only on the codes the policy lists: see `retries(grpc:)`).
    func mayReplay(_ head: HTTPRequestHead) -> Bool {
        switch head.method {
        // RFC 9110 §9.2.2
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: break
        }
        return nonIdempotent.contains { $0.matches(head) }
    }

    func retries(status: Int) -> Bool { statuses.contains(status) || statusClasses.contains(status / 100) }

    func retries(grpc code: Int) -> Bool { grpcCodes.contains(code) }
}

extension TimeAmount {
    /// `250ms`, `5s`, … as policy documents write them (validated before they get here).
    init(parsing text: String) throws {
        self = TimeAmount(try Duration(parsing: text))
    }
}
