import NIOCore

/// The generic cell rate algorithm (as in ATM and the `governor` crate Linkerd's rate limits use): one
/// theoretical arrival time per limit, no timer, no refill loop. A request conforms when it would not push that
/// time more than `burst` intervals past now; conforming moves it one interval on. A value with an injected clock.
struct GCRA: Sendable, Equatable {
    struct Limit: Sendable, Equatable {
        /// Time between requests at the sustained rate.
        let interval: TimeAmount
        /// How many may come at once after a quiet spell.
        let burst: Int

        /// `perSecond` requests a second on average, `burst` at once (default: one second's worth).
        init(perSecond: Double, burst: Int?) {
            interval = .nanoseconds(Int64((1_000_000_000 / max(perSecond, 1e-9)).rounded(.up)))
            self.burst = max(1, burst ?? Int(perSecond.rounded(.up)))
        }

        var window: TimeAmount { .nanoseconds(interval.nanoseconds * Int64(burst)) }
    }

    private(set) var arrival: NIODeadline = .distantPast

    /// nil when a request at `now` conforms to `limit`; else how long until one would.
    func wait(_ limit: Limit, at now: NIODeadline) -> TimeAmount? {
        let next = max(arrival, now) + limit.interval
        let ahead = next - now
        return ahead > limit.window ? ahead - limit.window : nil
    }

    /// Counts a conforming request at `now`.
    mutating func take(_ limit: Limit, at now: NIODeadline) {
        arrival = max(arrival, now) + limit.interval
    }

    /// True when the limit has fully recovered by `now` (the state could be dropped).
    func isIdle(at now: NIODeadline) -> Bool { arrival <= now }
}
