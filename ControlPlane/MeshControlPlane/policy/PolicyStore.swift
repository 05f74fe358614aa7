import Foundation

/// One stored version of the whole policy set, as the store keeps it.
struct PolicyVersionRecord: Sendable, Equatable {
    let version: UInt64
    let createdUnix: Int64
    /// Who made the change (the admin identity of the caller).
    let author: String
    /// `apply`, `delete` or `rollback to N`.
    let operation: String
    /// What changed, e.g. "TrafficPolicy/orders configured; Service/orders unchanged".
    let summary: String
    /// Canonical JSON of every document at this version (`PolicySet.canonicalJSON`).
    let documents: Data
}

/// Where policy versions live: SQLite by default, etcd for several replicas (later). Versions are only ever
/// appended; `append` succeeds only if `record.version` directly follows the latest stored version, so two
/// writers can never both create the same version (a compare-and-swap both stores can do).
protocol PolicyStore: Sendable {
    func latest() async throws -> PolicyVersionRecord?
    func record(_ version: UInt64) async throws -> PolicyVersionRecord?
    /// Newest first, without the documents' bodies being needed by callers (they are included anyway).
    func history(limit: Int) async throws -> [PolicyVersionRecord]
    /// Durable once this returns true; false if `record.version` is taken (someone else appended first).
    func append(_ record: PolicyVersionRecord) async throws -> Bool
    func close() async throws
}
