import Yams

extension TrafficPolicy {
    /// When a failed attempt is tried again. Failures that provably never reached the app (connect failure,
    /// refused stream, the peer's sidecar saying so) are retried for every method; the conditions in `retryOn`
    /// only for idempotent methods, gRPC codes for gRPC calls, and POST/PATCH only on `nonIdempotent` routes.
    public struct Retries: Sendable, Equatable, Codable {
        /// Tries after the first one; 0 turns retries off, even the safe ones.
        public var attempts = Defaults.retryAttempts
        /// Each try's own limit, until its response begins; a try cut off is retried (idempotent methods and
        /// `nonIdempotent` routes).
        public var perTryTimeout: String?
        /// Status codes (`"503"`), classes (`"5xx"`, `"gateway_error"`), `reset`, `timeout`, gRPC codes.
        public var retryOn: [String] = []
        /// Routes where non-idempotent methods may be replayed too (the app must deduplicate them).
        public var nonIdempotent: [RouteMatch] = []
        public var backoff = Backoff()
        /// Request bodies up to this size are kept for a replay; a larger body's request is not retried.
        public var bufferBytes = Defaults.retryBufferBytes
        public var budget = Budget()

        public init(
            attempts: Int = Defaults.retryAttempts, perTryTimeout: String? = nil, retryOn: [String] = [],
            nonIdempotent: [RouteMatch] = [], backoff: Backoff = Backoff(),
            bufferBytes: Int = Defaults.retryBufferBytes,
            budget: Budget = Budget()
        ) {
            self.attempts = attempts
            self.perTryTimeout = perTryTimeout
            self.retryOn = retryOn
            self.nonIdempotent = nonIdempotent
            self.backoff = backoff
            self.bufferBytes = bufferBytes
            self.budget = budget
        }

        // Absent keys keep their defaults (the synthesized decoder would demand every non-optional key).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init()
            attempts = try c.decodeIfPresent(Int.self, forKey: .attempts) ?? attempts
            perTryTimeout = try c.decodeIfPresent(String.self, forKey: .perTryTimeout)
            retryOn = try c.decodeIfPresent([String].self, forKey: .retryOn) ?? []
            nonIdempotent = try c.decodeIfPresent([RouteMatch].self, forKey: .nonIdempotent) ?? []
            backoff = try c.decodeIfPresent(Backoff.self, forKey: .backoff) ?? backoff
            bufferBytes = try c.decodeIfPresent(Int.self, forKey: .bufferBytes) ?? bufferBytes
            budget = try c.decodeIfPresent(Budget.self, forKey: .budget) ?? budget
        }
    }

    /// Exponential backoff between tries, with full jitter: a wait drawn from 0…min(max, base × 2^(try−1)).
    public struct Backoff: Sendable, Equatable, Codable {
        public var base = Defaults.backoffBase
        public var max = Defaults.backoffMax

        public init(base: String = Defaults.backoffBase, max: String = Defaults.backoffMax) {
            self.base = base
            self.max = max
        }
    }

    /// Extra load retries may add, as a percentage of requests over 10 s, plus a floor in retries per second.
    public struct Budget: Sendable, Equatable, Codable {
        public var percent = Defaults.budgetPercent
        public var minPerSecond = Defaults.budgetMinPerSecond

        public init(percent: Int = Defaults.budgetPercent, minPerSecond: Int = Defaults.budgetMinPerSecond) {
            self.percent = percent
            self.minPerSecond = minPerSecond
        }
    }

    /// The words `retryOn` accepts besides status codes.
    public static let retryConditions = [
        "5xx", "4xx", "gateway_error", "reset", "cancelled", "deadline_exceeded", "internal",
        "resource_exhausted", "unavailable",
    ]
}

extension TrafficPolicy.Retries {
    static let fields = ["attempts", "perTryTimeout", "retryOn", "nonIdempotent", "backoff", "bufferBytes", "budget"]

    static func read(_ node: Node, requestTimeout: Duration?, _ r: inout NodeReader) -> Self? {
        guard let t = r.mapping(node, "spec.retries", allowed: fields) else { return nil }
        var retries = Self()
        if let a = t["attempts"].flatMap({ r.int($0, "spec.retries.attempts", in: 0...10) }) { retries.attempts = a }
        if let node = t["perTryTimeout"],
            let perTry = r.duration(node, "spec.retries.perTryTimeout", in: .milliseconds(1) ... .seconds(3600))
        {
            retries.perTryTimeout = DurationText.format(perTry)
            if let requestTimeout, perTry > requestTimeout {
                r.issue(node, "spec.retries.perTryTimeout", "must not exceed spec.timeouts.request")
            }
        }
        if let node = t["retryOn"], let conditions = r.strings(node, "spec.retries.retryOn") {
            for (index, condition) in conditions.enumerated() where !Self.isCondition(condition) {
                r.issue(
                    node.sequence?[index] ?? node, "spec.retries.retryOn[\(index)]",
                    "unknown condition \"\(condition)\" (a status 400...599, or one of \(TrafficPolicy.retryConditions.joined(separator: ", ")))"
                )
            }
            retries.retryOn = conditions
        }
        if let node = t["nonIdempotent"], let items = r.list(node, "spec.retries.nonIdempotent") {
            retries.nonIdempotent = items.enumerated().compactMap { index, item in
                RouteMatch.read(item, "spec.retries.nonIdempotent[\(index)]", &r)
            }
        }
        if let node = t["backoff"], let b = r.mapping(node, "spec.retries.backoff", allowed: ["base", "max"]) {
            let base = b["base"].flatMap {
                r.duration($0, "spec.retries.backoff.base", in: .milliseconds(1) ... .seconds(10))
            }
            let max = b["max"].flatMap {
                r.duration($0, "spec.retries.backoff.max", in: .milliseconds(1) ... .seconds(60))
            }
            if let base { retries.backoff.base = DurationText.format(base) }
            if let max { retries.backoff.max = DurationText.format(max) }
            let effectiveBase = base ?? (try? Duration(parsing: retries.backoff.base)) ?? .zero
            let effectiveMax = max ?? (try? Duration(parsing: retries.backoff.max)) ?? .zero
            if effectiveBase > effectiveMax {
                r.issue(
                    node, "spec.retries.backoff",
                    "base (\(retries.backoff.base)) must not exceed max (\(retries.backoff.max))")
            }
        }
        if let b = t["bufferBytes"].flatMap({ r.int($0, "spec.retries.bufferBytes", in: 0...(16 << 20)) }) {
            retries.bufferBytes = b
        }
        if let b = t["budget"], let budget = r.mapping(b, "spec.retries.budget", allowed: ["percent", "minPerSecond"]) {
            if let p = budget["percent"].flatMap({ r.int($0, "spec.retries.budget.percent", in: 0...100) }) {
                retries.budget.percent = p
            }
            if let m = budget["minPerSecond"].flatMap({ r.int($0, "spec.retries.budget.minPerSecond", in: 0...10000) })
            {
                retries.budget.minPerSecond = m
            }
        }
        return retries
    }

    static func isCondition(_ text: String) -> Bool {
        if let code = Int(text) { return (400...599).contains(code) }
        return TrafficPolicy.retryConditions.contains(text)
    }
}
