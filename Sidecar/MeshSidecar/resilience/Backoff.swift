import NIOCore

/// The wait before retry `n` (1 for the first retry): full jitter over an exponential ceiling,
/// `jitter × min(max, base × 2^(n−1))` with `jitter` drawn from 0..<1 by the caller (AWS's "full jitter":
/// retries of many callers spread out instead of arriving together).
enum Backoff {
    static func delay(retry n: Int, base: TimeAmount, max: TimeAmount, jitter: Double) -> TimeAmount {
        let shift = Swift.min(Swift.max(n - 1, 0), 30)
        let ceiling = Swift.min(
            max.nanoseconds,
            base.nanoseconds.multipliedReportingOverflow(by: 1 << shift).overflow
                ? max.nanoseconds : base.nanoseconds << shift)
        return .nanoseconds(Int64(Double(ceiling) * Swift.min(Swift.max(jitter, 0), 1)))
    }
}
