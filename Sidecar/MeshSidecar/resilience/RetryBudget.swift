import NIOCore

/// How many retries a destination may still add: at most `percent` of the requests of the last 10 s, plus
/// `minPerSecond` per second of that window (Finagle's and Linkerd's retry budget). Counted in ten one-second
/// buckets, so a burst ages out of the window second by second. A value; the time comes with each call.
struct RetryBudget {
    static let buckets = 10
    static let bucketLength = TimeAmount.seconds(1)

    var percent: Int
    /// Retries per second allowed whatever the request rate (this event loop's share of the policy's floor).
    var minPerSecond: Double
    private var requests = [Int](repeating: 0, count: RetryBudget.buckets)
    private var retries = [Int](repeating: 0, count: RetryBudget.buckets)
    private var requestsInWindow = 0
    private var retriesInWindow = 0
    private var current = 0
    private var currentStart: NIODeadline?

    init(percent: Int, minPerSecond: Double) {
        self.percent = percent
        self.minPerSecond = minPerSecond
    }

    /// A request was sent to the destination (its first try).
    mutating func deposit(at now: NIODeadline) {
        roll(to: now)
        requests[current] += 1
        requestsInWindow += 1
    }

    /// Takes one retry from the budget if there is one left; false: the retry must not happen.
    mutating func withdraw(at now: NIODeadline) -> Bool {
        roll(to: now)
        let allowed =
            Double(requestsInWindow) * Double(percent) / 100 + minPerSecond * Double(Self.buckets)
        guard Double(retriesInWindow) + 1 <= allowed else { return false }
        retries[current] += 1
        retriesInWindow += 1
        return true
    }

    private mutating func roll(to now: NIODeadline) {
        guard let start = currentStart else {
            currentStart = now
            return
        }
        let elapsed = (now - start).nanoseconds / Self.bucketLength.nanoseconds
        guard elapsed > 0 else { return }
        for _ in 0..<min(Int(elapsed), Self.buckets) {
            current = (current + 1) % Self.buckets
            requestsInWindow -= requests[current]
            retriesInWindow -= retries[current]
            requests[current] = 0
            retries[current] = 0
        }
        currentStart = start + .nanoseconds(elapsed * Self.bucketLength.nanoseconds)
    }
}
