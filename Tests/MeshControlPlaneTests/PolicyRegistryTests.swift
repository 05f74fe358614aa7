import Foundation
import Logging
import MeshCore
import MeshPolicy
import Testing

@testable import MeshControlPlane

/// The policy registry over a real SQLite file: versions, compare-and-swap appends, reopening, and
/// concurrent changes that all land, each exactly once.
@Suite struct PolicyRegistryTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString)").path
    let logger = Logger(label: "test")

    init() throws { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }

    func service(_ name: String, marker: String) throws -> [LoadedDocument] {
        try PolicyLoader.load(
            yaml:
                "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: \(name)}\nspec: {subsets: [{name: s, labels: {m: \(marker)}}]}\n",
            file: "\(name).yaml"
        ).get()
    }

    @Test func appendsOnlyTheNextVersionAndSurvivesReopening() async throws {
        let store = try await SQLitePolicyStore.open(path: dir + "/meshwork.db", logger: logger)
        let record = PolicyVersionRecord(
            version: 1, createdUnix: 1, author: "admin", operation: "apply", summary: "x", documents: Data("[]".utf8))
        #expect(try await store.append(record))
        #expect(try await !store.append(record), "version 1 is taken")
        let skip = PolicyVersionRecord(
            version: 3, createdUnix: 1, author: "admin", operation: "apply", summary: "y", documents: Data("[]".utf8))
        #expect(try await !store.append(skip), "versions never skip")
        try await store.close()

        let reopened = try await SQLitePolicyStore.open(path: dir + "/meshwork.db", logger: logger)
        #expect(try await reopened.latest() == record)
        try await reopened.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func aFileThatIsNotADatabaseIsRefusedWithWhatToDo() async throws {
        try Data("not sqlite at all, just text that is long enough to have a header".utf8).write(
            to: URL(fileURLWithPath: dir + "/meshwork.db"))
        await #expect {
            _ = try await SQLitePolicyStore.open(path: dir + "/meshwork.db", logger: logger)
        } throws: { error in
            (error as? MeshError)?.message.contains("restore it from a backup") == true
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func concurrentChangesEachGetTheirOwnVersion() async throws {
        let store = try await SQLitePolicyStore.open(path: dir + "/meshwork.db", logger: logger)
        let registry = try await PolicyRegistry(store: store, logger: logger)
        let applies = try (0..<20).map { try service("svc-\($0)", marker: "m\($0)") }
        let versions = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for documents in applies {
                group.addTask { try await registry.apply(documents, author: "admin", dryRun: false).version }
            }
            return try await group.reduce(into: [UInt64]()) { $0.append($1) }
        }
        #expect(versions.sorted() == Array(1...20), "twenty changes, twenty versions, none lost")
        #expect(await registry.set.documents.count == 20, "the latest set holds every change")
        let history = try await store.history(limit: 100)
        #expect(history.map(\.version) == Array((1...20).reversed()))
        // Reopened, the registry starts from the stored latest.
        let again = try await PolicyRegistry(store: store, logger: logger)
        #expect(await again.version == 20)
        #expect(await again.set == registry.set)
        // Two writers of one store (as two replicas would be): the stale one loses the version race, starts again
        // from what won, and keeps both changes.
        _ = try await registry.apply(try service("late-a", marker: "a"), author: "admin", dryRun: false)
        let late = try await again.apply(try service("late-b", marker: "b"), author: "admin", dryRun: false)
        #expect(late.version == 22 && late.created)
        #expect(await again.set.documents.count == 22, "late-a (the other writer's) is kept")
        try await store.close()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
