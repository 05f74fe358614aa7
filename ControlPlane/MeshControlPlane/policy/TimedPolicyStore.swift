/// Any policy store, timed: each operation's latency and failures go to the control plane's metrics.
struct TimedPolicyStore: PolicyStore {
    let store: any PolicyStore
    let metrics: ControlPlaneMetrics

    func latest() async throws -> PolicyVersionRecord? { try await timed(.latest) { try await store.latest() } }

    func record(_ version: UInt64) async throws -> PolicyVersionRecord? {
        try await timed(.record) { try await store.record(version) }
    }

    func history(limit: Int) async throws -> [PolicyVersionRecord] {
        try await timed(.history) { try await store.history(limit: limit) }
    }

    func append(_ record: PolicyVersionRecord) async throws -> Bool {
        let appended = try await timed(.append) { try await store.append(record) }
        if appended { metrics.policyVersion.set(Int64(record.version)) }
        return appended
    }

    func close() async throws { try await store.close() }

    private func timed<T>(_ operation: ControlPlaneMetrics.StoreOperation, _ body: () async throws -> T) async throws
        -> T
    {
        let start = ContinuousClock.now
        do {
            let result = try await body()
            metrics.storeSeconds[operation]!.record(ContinuousClock.now - start)
            return result
        } catch {
            metrics.storeErrors[operation]!.increment()
            throw error
        }
    }
}
