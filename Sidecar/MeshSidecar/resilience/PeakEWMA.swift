import Foundation
import NIOCore

/// One endpoint's latency estimate for peak-EWMA balancing (Linkerd's, from Finagle): a slower response
/// than the estimate becomes the estimate at once (the peak), a faster one pulls it down by how much time has
/// passed (decay 10 s); the estimate also decays towards zero while no response arrives, so an endpoint that
/// was slow is tried again after a while. Its cost is the estimate times the requests in flight to it plus one.
struct PeakEWMA {
    static let decay = TimeAmount.seconds(10)
    /// The estimate of an endpoint nothing is known about yet (Linkerd's default RTT).
    static let initial = TimeAmount.milliseconds(30)

    private(set) var estimateNanos: Double
    private var updated: NIODeadline

    init(at now: NIODeadline) {
        estimateNanos = Double(Self.initial.nanoseconds)
        updated = now
    }

    /// A response arrived `rtt` after its request was sent.
    mutating func observe(_ rtt: TimeAmount, at now: NIODeadline) {
        let sample = Double(max(rtt.nanoseconds, 0))
        if sample > estimateNanos {
            estimateNanos = sample
        } else {
            let w = weight(at: now)
            estimateNanos = estimateNanos * w + sample * (1 - w)
        }
        updated = now
    }

    /// The cost of sending one more request: lower is better.
    mutating func cost(inFlight: Int, at now: NIODeadline) -> Double {
        // Decay towards zero for the time without a sample, as an observation of 0 would.
        estimateNanos *= weight(at: now)
        updated = now
        return estimateNanos * Double(inFlight + 1)
    }

    private func weight(at now: NIODeadline) -> Double {
        let elapsed = Double(max((now - updated).nanoseconds, 0))
        return exp(-elapsed / Double(Self.decay.nanoseconds))
    }
}
