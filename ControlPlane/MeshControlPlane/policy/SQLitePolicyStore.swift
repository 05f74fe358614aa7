import Foundation
import Logging
import MeshCore
import NIOCore
import NIOPosix
import SQLiteNIO

/// Policy versions in an SQLite file under the data dir: WAL journal, `synchronous=FULL`, one row per version
/// written by a single INSERT, so a version is either wholly there or not at all — also after `kill -9` or a
/// power cut — and it is on disk before the caller hears of it.
final class SQLitePolicyStore: PolicyStore {
    private let connection: SQLiteConnection
    static let schemaVersion = 1

    private init(connection: SQLiteConnection) { self.connection = connection }

    static func open(path: String, logger: Logger) async throws -> SQLitePolicyStore {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw MeshError(.invalidConfiguration, "cannot open the policy database \(path): \(error)")
        }
        let store = SQLitePolicyStore(connection: connection)
        do {
            try await store.migrate()
        } catch {
            try? await connection.close()
            throw MeshError(
                .invalidConfiguration,
                "\(path) is not a usable policy database (\(error)); restore it from a backup or move it away to start empty"
            )
        }
        return store
    }

    private func migrate() async throws {
        // WAL: readers never block the writer; FULL: a commit is fsynced before it returns.
        _ = try await connection.query("PRAGMA journal_mode=WAL", [])
        _ = try await connection.query("PRAGMA synchronous=FULL", [])
        _ = try await connection.query("PRAGMA busy_timeout=5000", [])
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
            """, [])
        let rows = try await connection.query("SELECT value FROM meta WHERE key = 'schema_version'", [])
        if let found = rows.first?.column("value")?.integer, found > Self.schemaVersion {
            throw MeshError(
                .invalidConfiguration,
                "its schema version \(found) is newer than this mesh-control understands (\(Self.schemaVersion))")
        }
        _ = try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS policy_versions (
                version INTEGER PRIMARY KEY,
                created_unix INTEGER NOT NULL,
                author TEXT NOT NULL,
                operation TEXT NOT NULL,
                summary TEXT NOT NULL,
                documents TEXT NOT NULL
            )
            """, [])
        _ = try await connection.query(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", [.text("\(Self.schemaVersion)")])
    }

    private static let columns = "version, created_unix, author, operation, summary, documents"

    private func decode(_ row: SQLiteRow) throws -> PolicyVersionRecord {
        guard let version = row.column("version")?.integer, let created = row.column("created_unix")?.integer,
            let author = row.column("author")?.string, let operation = row.column("operation")?.string,
            let summary = row.column("summary")?.string, let documents = row.column("documents")?.string
        else { throw MeshError(.invalidConfiguration, "a policy_versions row is incomplete") }
        return PolicyVersionRecord(
            version: UInt64(version), createdUnix: Int64(created), author: author, operation: operation,
            summary: summary, documents: Data(documents.utf8))
    }

    func latest() async throws -> PolicyVersionRecord? {
        try await connection.query("SELECT \(Self.columns) FROM policy_versions ORDER BY version DESC LIMIT 1", [])
            .first.map(decode)
    }

    func record(_ version: UInt64) async throws -> PolicyVersionRecord? {
        try await connection.query(
            "SELECT \(Self.columns) FROM policy_versions WHERE version = ?", [.integer(Int(version))]
        ).first.map(decode)
    }

    func history(limit: Int) async throws -> [PolicyVersionRecord] {
        try await connection.query(
            "SELECT \(Self.columns) FROM policy_versions ORDER BY version DESC LIMIT ?", [.integer(limit)]
        ).map(decode)
    }

    func append(_ record: PolicyVersionRecord) async throws -> Bool {
        // One statement: it inserts only when the new version directly follows the latest one, and says so.
        let inserted = try await connection.query(
            """
            INSERT INTO policy_versions (\(Self.columns))
            SELECT ?, ?, ?, ?, ?, ?
            WHERE (SELECT COALESCE(MAX(version), 0) FROM policy_versions) = ? - 1
            RETURNING version
            """,
            [
                .integer(Int(record.version)), .integer(Int(record.createdUnix)), .text(record.author),
                .text(record.operation), .text(record.summary),
                .text(String(decoding: record.documents, as: UTF8.self)),
                .integer(Int(record.version)),
            ])
        return !inserted.isEmpty
    }

    func close() async throws { try await connection.close() }
}
