import Foundation

/// Which connected sidecar runs which policy version, and which refused which and why: the answer to
/// "applied by N of M, who lags, who rejected". Fed by the push streams.
actor ConvergenceTracker {
    struct Sidecar: Sendable, Equatable {
        let instance: String
        let service: String
        var applied: UInt64
        var rejected: UInt64 = 0
        var error = ""
    }

    struct Status: Sendable {
        let version: UInt64
        let connected: Int
        let applied: Int
        let lagging: [Sidecar]
        let rejected: [Sidecar]
        var converged: Bool { lagging.isEmpty && rejected.isEmpty }
    }

    private var sidecars: [Int: Sidecar] = [:] {
        didSet { metrics?.connectedSidecars.set(Int64(sidecars.count)) }
    }
    private var nextID = 0
    /// Versions pushed and not yet settled everywhere, with their first push (for the convergence time).
    private var unsettled: [UInt64: ContinuousClock.Instant] = [:]
    /// The newest version that has settled: pushing it (or an older one) again (a reconnect, a sidecar's new
    /// destinations) starts no new convergence.
    private var settledUpTo: UInt64 = 0
    let metrics: ControlPlaneMetrics?

    init(metrics: ControlPlaneMetrics? = nil) { self.metrics = metrics }

    /// A version went out on some stream (the first push starts its convergence clock).
    func pushed(_ version: UInt64) {
        if version > settledUpTo, unsettled[version] == nil { unsettled[version] = .now }
    }

    /// Records the convergence time of every pushed version that no connected sidecar is still working on.
    private func settle() {
        for (version, first) in unsettled
        where !sidecars.values.contains(where: { $0.applied < version && $0.rejected < version }) {
            unsettled[version] = nil
            settledUpTo = max(settledUpTo, version)
            metrics?.convergenceSeconds.record(ContinuousClock.now - first)
        }
    }

    /// A sidecar's stream opened; it says which version it already runs (from its disk).
    func connected(instance: String, service: String, running: UInt64) -> Int {
        let id = nextID
        nextID += 1
        sidecars[id] = Sidecar(instance: instance, service: service, applied: running)
        return id
    }

    func disconnected(_ id: Int) {
        sidecars.removeValue(forKey: id)
        settle()
    }

    func acknowledged(_ id: Int, version: UInt64) {
        guard var s = sidecars[id] else { return }
        s.applied = max(s.applied, version)
        if s.rejected <= version {
            s.rejected = 0
            s.error = ""
        }
        sidecars[id] = s
        settle()
    }

    func rejected(_ id: Int, version: UInt64, error: String) {
        guard var s = sidecars[id] else { return }
        s.rejected = max(s.rejected, version)
        s.error = error
        sidecars[id] = s
        settle()
    }

    func status(of version: UInt64) -> Status {
        let all = sidecars.values.sorted { $0.instance < $1.instance }
        let applied = all.filter { $0.applied >= version }
        let rejected = all.filter { $0.applied < version && $0.rejected >= version }
        let lagging = all.filter { $0.applied < version && $0.rejected < version }
        return Status(
            version: version, connected: all.count, applied: applied.count, lagging: lagging, rejected: rejected)
    }

    /// The status once no connected sidecar is still working on `version` (all applied or rejected it), or at
    /// `deadline`, whichever comes first.
    func waitUntilSettled(_ version: UInt64, deadline: ContinuousClock.Instant) async -> Status {
        // A cheap scan while waiting; the sorted status only once, at the end.
        while sidecars.values.contains(where: { $0.applied < version && $0.rejected < version }),
            ContinuousClock.now < deadline
        {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return status(of: version)
    }
}
