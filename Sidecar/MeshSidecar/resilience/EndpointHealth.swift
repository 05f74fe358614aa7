import NIOCore

/// Outlier detection for one endpoint, as a value: failures in a row eject it for a backoff that doubles on each
/// repeated ejection (up to a maximum), after which it is re-admitted with a clean slate. The multiplier goes
/// back to one once the endpoint has stayed in for as long as its last ejection lasted. Whether an ejection may
/// happen at all (the cap on the share ejected) is the balancer's call, passed in.
struct EndpointHealth {
    struct Rules: Sendable, Equatable {
        /// 0: never eject.
        var consecutiveFailures: Int
        var baseEjection: TimeAmount
        var maxEjection: TimeAmount
        var maxEjectedPercent: Int
    }

    private(set) var consecutiveFailures = 0
    /// Ejections in a row that the backoff has grown with.
    private(set) var ejections = 0
    private(set) var ejectedUntil: NIODeadline?
    private var lastEjection = TimeAmount.zero

    func isEjected(at now: NIODeadline) -> Bool { ejectedUntil.map { now < $0 } ?? false }

    mutating func succeeded(at now: NIODeadline) {
        readmitIfDue(at: now)
        consecutiveFailures = 0
    }

    /// One more failure; returns how long the endpoint is ejected for if this one ejects it.
    mutating func failed(at now: NIODeadline, rules: Rules, mayEject: Bool) -> TimeAmount? {
        readmitIfDue(at: now)
        guard !isEjected(at: now) else { return nil }
        consecutiveFailures += 1
        guard rules.consecutiveFailures > 0, consecutiveFailures >= rules.consecutiveFailures, mayEject else {
            return nil
        }
        ejections += 1
        let shift = min(ejections - 1, 20)
        let length = TimeAmount.nanoseconds(
            min(rules.maxEjection.nanoseconds, rules.baseEjection.nanoseconds << Int64(shift)))
        ejectedUntil = now + length
        lastEjection = length
        consecutiveFailures = 0
        return length
    }

    /// After the backoff: back in, counting failures afresh; and after as long again without an ejection, the
    /// backoff starts over from its base.
    private mutating func readmitIfDue(at now: NIODeadline) {
        guard let until = ejectedUntil, now >= until else { return }
        if now >= until + lastEjection {
            ejections = 0
            ejectedUntil = nil
        }
    }
}
