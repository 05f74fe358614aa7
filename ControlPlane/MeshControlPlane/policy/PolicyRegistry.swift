import Foundation
import Logging
import MeshCore
import MeshPolicy

/// The policy the control plane serves: the latest version's set in memory, every change validated as a
/// whole, then appended to the store, and only then visible and acknowledged. Changes are applied one at a
/// time; the store is the truth: a change that loses the race for its version number (another replica's
/// write) starts again from what won.
actor PolicyRegistry {
    private let store: any PolicyStore
    private let logger: Logger
    private(set) var version: UInt64
    private(set) var set: PolicySet

    struct Outcome: Sendable {
        /// The version now current (unchanged if nothing changed or on a dry run).
        let version: UInt64
        let changes: [(PolicyKey, PolicySet.Change)]
        /// Whether this call created `version`.
        let created: Bool
    }

    private var watchers: [Int: AsyncStream<(UInt64, PolicySet)>.Continuation] = [:]
    private var nextWatcher = 0

    /// The current version at once, then each new one; a slow reader gets only the newest.
    func watch() -> (id: Int, versions: AsyncStream<(UInt64, PolicySet)>) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: (UInt64, PolicySet).self, bufferingPolicy: .bufferingNewest(1))
        let id = nextWatcher
        nextWatcher += 1
        watchers[id] = continuation
        continuation.yield((version, set))
        return (id, stream)
    }

    func unwatch(_ id: Int) { watchers.removeValue(forKey: id)?.finish() }

    private func publish() {
        for continuation in watchers.values { continuation.yield((version, set)) }
    }

    private var changing = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func takeTurn() async {
        guard changing else {
            changing = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func passTurn() {
        if waiting.isEmpty { changing = false } else { waiting.removeFirst().resume() }
    }

    init(store: any PolicyStore, logger: Logger) async throws {
        self.store = store
        self.logger = logger
        if let latest = try await store.latest() {
            version = latest.version
            set = try PolicySet(canonicalJSON: latest.documents)
        } else {
            version = 0
            set = PolicySet()
        }
    }

    /// Creates or replaces `documents` (atomically: all or none), unless the result is inconsistent.
    func apply(_ documents: [LoadedDocument], author: String, dryRun: Bool) async throws -> Outcome {
        try await change(author: author, operation: "apply", dryRun: dryRun) { current in
            try current.applying(documents).get()
        }
    }

    func delete(_ keys: [PolicyKey], author: String) async throws -> Outcome {
        try await change(author: author, operation: "delete", dryRun: false) { current in
            (try current.deleting(keys).get(), keys.map { ($0, .deleted) })
        }
    }

    /// A new version whose documents are those of `target` (history is never rewritten).
    func rollback(to target: UInt64, author: String) async throws -> Outcome {
        guard let record = try await store.record(target) else {
            throw MeshError(.notFound, "there is no policy version \(target) (see: meshctl history)")
        }
        let old = try PolicySet(canonicalJSON: record.documents)
        return try await change(author: author, operation: "rollback to \(target)", dryRun: false) { current in
            (old, current.changes(to: old))
        }
    }

    func documents(at requested: UInt64?) async throws -> (UInt64, PolicySet) {
        guard let requested, requested != version else { return (version, set) }
        guard let record = try await store.record(requested) else {
            throw MeshError(.notFound, "there is no policy version \(requested) (latest is \(version))")
        }
        return (requested, try PolicySet(canonicalJSON: record.documents))
    }

    func history(limit: Int) async throws -> [PolicyVersionRecord] { try await store.history(limit: limit) }

    /// Computes the next set from the current one and appends it as the next version; if another change
    /// took that version first, recomputes from the stored latest (bounded).
    private func change(
        author: String, operation: String, dryRun: Bool,
        _ compute: (PolicySet) throws -> (PolicySet, [(PolicyKey, PolicySet.Change)])
    ) async throws -> Outcome {
        // One change at a time from this process (the actor alone would interleave them at the store's
        // await); the store's compare-and-swap then only ever fails against another writer of the same store.
        await takeTurn()
        defer { passTurn() }
        for _ in 0..<8 {
            let base = version
            let (next, changes) = try compute(set)
            if dryRun || next == set { return Outcome(version: base, changes: changes, created: false) }
            let summary = changes.filter { $0.1 != .unchanged }.map { "\($0.0) \($0.1.rawValue)" }.joined(
                separator: "; ")
            let record = PolicyVersionRecord(
                version: base + 1, createdUnix: Int64(Date().timeIntervalSince1970), author: author,
                operation: operation, summary: summary, documents: next.canonicalJSON())
            if try await store.append(record) {
                if record.version > version {
                    version = record.version
                    set = next
                    publish()
                }
                logger.notice(
                    "policy version stored",
                    metadata: ["version": "\(record.version)", "operation": "\(operation)", "changes": "\(summary)"])
                return Outcome(version: record.version, changes: changes, created: true)
            }
            // Lost the race: load what won and try again on top of it.
            if let latest = try await store.latest(), latest.version > version {
                version = latest.version
                set = try PolicySet(canonicalJSON: latest.documents)
                publish()
            }
        }
        throw MeshError(.unavailable, "policy changes are contending too much; try again")
    }
}
