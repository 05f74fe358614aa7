/// Admits new long-lived streams (policy pushes, discovery watches) at a bounded rate, first come first
/// served: when every sidecar reconnects at once (a control-plane restart, a network heal), they are let in
/// at `ratePerSecond` after an initial `burst`, in arrival order, so the control plane is not flattened and
/// nobody waits behind later arrivals.
actor AdmissionGate {
    let ratePerSecond: Int
    let burst: Int
    private var tokens: Double
    private var refilled = ContinuousClock.now
    private var waiting: [CheckedContinuation<Int, Never>] = []
    private var draining = false
    /// Admitted only after waiting, since start (for logs and tests).
    private(set) var delayed = 0

    let metrics: ControlPlaneMetrics?

    init(ratePerSecond: Int, burst: Int, metrics: ControlPlaneMetrics? = nil) {
        self.metrics = metrics
        self.ratePerSecond = max(1, ratePerSecond)
        self.burst = max(1, burst)
        tokens = Double(max(1, burst))
    }

    var queued: Int { waiting.count }

    private var admitted = 0

    /// Returns when this caller may proceed, with its place in the admission order (0, 1, 2, …).
    @discardableResult
    func admit() async -> Int {
        refill()
        if waiting.isEmpty, tokens >= 1 {
            tokens -= 1
            admitted += 1
            return admitted - 1
        }
        delayed += 1
        if !draining {
            // Runs once this call is suspended (the actor is ours until then), so the queue holds us by then.
            draining = true
            Task { await drain() }
        }
        metrics?.admissionWaits.increment()
        let start = ContinuousClock.now
        let place = await withCheckedContinuation { waiting.append($0) }
        metrics?.admissionWaitSeconds.record(ContinuousClock.now - start)
        return place
    }

    private func refill() {
        let elapsed = ContinuousClock.now - refilled
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(Double(burst), tokens + seconds * Double(ratePerSecond))
        refilled += elapsed
    }

    private func drain() async {
        while !waiting.isEmpty {
            try? await Task.sleep(for: .milliseconds(10))
            refill()
            while tokens >= 1, !waiting.isEmpty {
                tokens -= 1
                admitted += 1
                waiting.removeFirst().resume(returning: admitted - 1)
            }
        }
        draining = false
    }
}
