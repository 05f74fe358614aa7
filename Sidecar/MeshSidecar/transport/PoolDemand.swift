import NIOCore

/// How many HTTP/1.1 connections an endpoint's pool should keep: the peak number of exchanges in flight at once
/// over the current and the previous window. A value; the pool passes the time in.
struct PoolDemand {
    static let window = TimeAmount.seconds(10)
    /// Idle connections kept even for an endpoint that never had two exchanges at once.
    static let floor = 4

    private(set) var inUse = 0
    private var currentPeak = 0
    private var previousPeak = 0
    private var windowEnd: NIODeadline?

    mutating func acquired(at now: NIODeadline) {
        roll(now)
        inUse += 1
        currentPeak = max(currentPeak, inUse)
    }

    /// One exchange gave its connection back; returns how many idle connections the pool should keep.
    mutating func released(at now: NIODeadline) -> Int {
        inUse = max(0, inUse - 1)
        return wanted(at: now)
    }

    /// How many idle connections the pool should keep now.
    mutating func wanted(at now: NIODeadline) -> Int {
        roll(now)
        return max(Self.floor, currentPeak, previousPeak)
    }

    private mutating func roll(_ now: NIODeadline) {
        guard let end = windowEnd else {
            windowEnd = now + Self.window
            return
        }
        guard now >= end else { return }
        // A whole window with no event means the older one is stale too.
        previousPeak = now >= end + Self.window ? inUse : currentPeak
        currentPeak = inUse
        windowEnd = now + Self.window
    }
}
