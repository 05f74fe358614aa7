import Foundation
import MeshCore
import MeshIdentity

/// Join tokens: minted for one service, expiring, revocable, limited in uses. Persisted to
/// `DATA/tokens.json` (0600, atomic rename) before any answer leaves, so a crash never forgets one.
actor TokenRegistry {
    private var records: [String: TokenRecord]
    private let path: String?
    private let caPin: CAPin

    init(path: String?, caPin: CAPin) throws(MeshError) {
        self.path = path
        self.caPin = caPin
        guard let path, let bytes = try SecureFiles.read(path) else {
            records = [:]
            return
        }
        // Every unused join token is in it: readable by others, any of them could enrol a workload.
        try SecureFiles.requirePrivate(path)
        do {
            let list = try JSONDecoder().decode([TokenRecord].self, from: Data(bytes))
            records = Dictionary(list.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        } catch {
            throw MeshError(
                .invalidConfiguration,
                "\(path) is not a valid token file (\(error)); restore it from backup or remove it to forget all tokens"
            )
        }
    }

    /// Mints a token. `ttl` and `maxUses` are validated by the caller (AdminAPI).
    func create(service: ServiceName, ttl: Duration, maxUses: UInt32, now: Date) async throws -> (
        JoinToken, TokenRecord
    ) {
        let token = JoinToken.generate(caPin: caPin)
        let record = TokenRecord(
            id: token.id, service: service.value,
            secretSHA256: token.secretDigest.map { String(format: "%02x", $0) }.joined(),
            createdUnix: Int64(now.timeIntervalSince1970),
            expiresUnix: Int64(now.timeIntervalSince1970) + ttl.wholeSeconds,
            maxUses: maxUses, uses: 0, revokedUnix: nil)
        records[token.id] = record
        changes += 1
        try await persisted(through: changes)
        return (token, record)
    }

    /// Revokes by id; false if no such token.
    func revoke(id: String, now: Date) async throws -> Bool {
        guard var record = records[id] else { return false }
        if record.revokedUnix == nil { record.revokedUnix = Int64(now.timeIntervalSince1970) }
        records[id] = record
        changes += 1
        try await persisted(through: changes)
        return true
    }

    func list() -> [TokenRecord] { records.values.sorted { $0.createdUnix < $1.createdUnix } }

    /// The token checks of the enrolment checklist, then one use is counted — in one actor turn, so two
    /// concurrent enrolments cannot both spend the last use — and written to disk before this returns.
    func redeem(_ raw: String, for service: ServiceName, now: Date) async throws(EnrolmentRefusal) -> TokenRecord {
        let token: JoinToken
        do { token = try JoinToken(parsing: raw) } catch {
            throw EnrolmentRefusal(.malformedToken, error.message)
        }
        guard var record = records[token.id] else {
            throw EnrolmentRefusal(
                .unknownToken,
                "join token \(token.id) is not known to this control plane; create one with: meshctl token create --service \(service)"
            )
        }
        let presented = token.secretDigest.map { String(format: "%02x", $0) }.joined()
        guard constantTimeEquals(Array(presented.utf8), Array(record.secretSHA256.utf8)) else {
            throw EnrolmentRefusal(
                .forgedToken, "join token \(token.id) failed verification (forged or mistyped secret)")
        }
        if let revoked = record.revokedUnix {
            throw EnrolmentRefusal(.revokedToken, "join token \(token.id) was revoked at \(Self.format(revoked))")
        }
        guard Int64(now.timeIntervalSince1970) < record.expiresUnix else {
            throw EnrolmentRefusal(
                .expiredToken,
                "join token \(token.id) expired at \(Self.format(record.expiresUnix)); create a new one with: meshctl token create --service \(record.service)"
            )
        }
        guard record.uses < record.maxUses else {
            throw EnrolmentRefusal(
                .exhaustedToken,
                "join token \(token.id) has already been used \(record.uses) of \(record.maxUses) times; create a new one"
            )
        }
        guard record.service == service.value else {
            throw EnrolmentRefusal(
                .wrongService,
                "join token \(token.id) grants service \"\(record.service)\" but the CSR asks for \"\(service)\"")
        }
        record.uses += 1
        records[token.id] = record
        changes += 1
        let change = changes
        do { try await persisted(through: change) } catch {
            // The use could not be recorded durably: refuse rather than issue a certificate we might forget.
            records[token.id]?.uses -= 1
            throw EnrolmentRefusal(.notAuthenticated, "control plane could not record the token use: \(error)")
        }
        return record
    }

    /// Counts in-memory changes, and how many of them are on disk.
    private var changes = 0
    private var persistedChanges = 0
    /// The write in flight and the changes it covers.
    private var writing: (task: Task<Void, any Error>, covers: Int)?

    /// Returns once change number `change` is on disk. Group commit: while one write (with its fsyncs) is in
    /// flight, every redemption that arrives waits for it and then for one more write that covers them all, so a
    /// burst of enrolments costs a few writes, not one each — and none is answered before its use is durable.
    private func persisted(through change: Int) async throws {
        while persistedChanges < change {
            guard let path else {
                persistedChanges = changes
                return
            }
            let current: (task: Task<Void, any Error>, covers: Int)
            if let writing {
                current = writing
            } else {
                let data: Data
                do { data = try JSONEncoder().encode(list()) } catch {
                    throw MeshError(.fileSystem, "cannot encode tokens: \(error)")
                }
                current = (Task.detached { try SecureFiles.write(Array(data), to: path, mode: 0o600) }, changes)
                writing = current
            }
            let result = await current.task.result
            // Whoever resumes first retires the write; the others find it retired.
            if writing?.task == current.task { writing = nil }
            switch result {
            case .success: persistedChanges = max(persistedChanges, current.covers)
            case .failure(let error): if current.covers >= change { throw error }
            }
        }
    }

    static func format(_ unix: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
    }
}
