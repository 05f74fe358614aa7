import MeshPolicy
import NIOCore

/// A service's rate limits as its sidecars apply them to what they receive, compiled once per policy version.
struct RateLimitRules: Sendable, Equatable {
    let total: GCRA.Limit?
    let perIdentity: GCRA.Limit?
    let overrides: [String: GCRA.Limit]

    init(_ spec: TrafficPolicy.RateLimit) {
        func limit(_ rate: Int, _ burst: Int?) -> GCRA.Limit { GCRA.Limit(perSecond: Double(rate), burst: burst) }
        total = spec.total.map { limit($0.requestsPerSecond, $0.burst) }
        perIdentity = spec.perIdentity.map { limit($0.requestsPerSecond, $0.burst) }
        var overrides: [String: GCRA.Limit] = [:]
        for o in spec.overrides ?? [] {
            for caller in o.from { overrides[caller] = limit(o.requestsPerSecond, o.burst) }
        }
        self.overrides = overrides
    }

    /// The limit of one caller's own: its override, else the per-identity one.
    func limit(for caller: String?) -> GCRA.Limit? {
        caller.flatMap { overrides[$0] } ?? perIdentity
    }
}

/// The counts behind one sidecar's rate limits, on its event loop (no lock on the request path; the sidecar
/// runs one loop, so the counts are the sidecar's). Counts start over when a policy version changes the limits,
/// and stay when it changes anything else.
final class RateLimiter: @unchecked Sendable {
    enum Verdict: Equatable, Sendable {
        case admitted
        /// Over `limit` ("total" or "identity"); a request would conform again after `retryAfter`.
        case limited(limit: String, retryAfter: TimeAmount)
    }

    private var rules: RateLimitRules?
    private var total = GCRA()
    private var byCaller: [String: GCRA] = [:]
    /// Callers kept before idle ones are dropped (identities come from verified certificates, so this bounds
    /// memory against a mesh with very many services, not against an attacker).
    static let maxTracked = 10_000

    /// Admits one request from `caller` (nil: no workload identity, counted together) at `now`.
    func admit(caller: String?, rules: RateLimitRules, at now: NIODeadline) -> Verdict {
        if self.rules != rules {
            self.rules = rules
            total = GCRA()
            byCaller = [:]
        }
        let key = caller ?? ""
        let own = rules.limit(for: caller)
        if let own, let wait = byCaller[key, default: GCRA()].wait(own, at: now) {
            return .limited(limit: "identity", retryAfter: wait)
        }
        if let limit = rules.total {
            if let wait = total.wait(limit, at: now) { return .limited(limit: "total", retryAfter: wait) }
            total.take(limit, at: now)
        }
        if let own {
            if byCaller.count >= Self.maxTracked, byCaller[key] == nil {
                byCaller = byCaller.filter { !$0.value.isIdle(at: now) }
                // Still full of active callers: start over rather than grow (each gets a fresh burst once).
                if byCaller.count >= Self.maxTracked { byCaller.removeAll(keepingCapacity: true) }
            }
            byCaller[key, default: GCRA()].take(own, at: now)
        }
        return .admitted
    }
}
