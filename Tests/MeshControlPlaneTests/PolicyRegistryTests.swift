import Foundation
import Logging
import MeshCore
import MeshPolicy
import Testing

@testable import MeshControlPlane

/// The policy registry over a real SQLite file: versions, compare-and-swap appends, reopening, and
/// concurrent changes that all land, each exactly once.
@Suite final class PolicyRegistryTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString)").path
    let logger = Logger(label: "test")

    init() throws { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    // Every test gets its own instance and directory; the tests that do not remove it themselves leave it here.
    deinit { try? FileManager.default.removeItem(atPath: dir) }

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

    @Test func convergenceSaysWhoAppliedWhoLagsAndWhoRejected() async {
        let tracker = ConvergenceTracker()
        let a = await tracker.connected(instance: "orders@10.0.0.1:15006", service: "orders", running: 3)
        let b = await tracker.connected(instance: "orders@10.0.0.2:15006", service: "orders", running: 3)
        let c = await tracker.connected(instance: "billing@10.0.0.3:15006", service: "billing", running: 2)
        await tracker.acknowledged(a, version: 4)
        await tracker.rejected(b, version: 4, error: "declares protocol tcp")
        var status = await tracker.status(of: 4)
        #expect(status.connected == 3 && status.applied == 1 && !status.converged)
        #expect(
            status.rejected.map(\.instance) == ["orders@10.0.0.2:15006"]
                && status.rejected[0].error == "declares protocol tcp")
        #expect(status.lagging.map(\.instance) == ["billing@10.0.0.3:15006"])
        // A later ACK clears the rejection; a disconnected sidecar no longer counts.
        await tracker.acknowledged(b, version: 5)
        await tracker.disconnected(c)
        status = await tracker.status(of: 4)
        #expect(status.converged && status.applied == 2 && status.connected == 2)
        let settled = await tracker.waitUntilSettled(6, deadline: .now + .milliseconds(100))
        #expect(settled.lagging.count == 2, "nobody has 6: the wait ends at the deadline")
    }

    @Test func eachSidecarGetsOnlyItsSlice() throws {
        let yaml = try String(
            contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("policies/examples/services.yaml").path,
            encoding: .utf8)
        let traffic =
            "---\napiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: t}\nspec: {service: orders}\n---\napiVersion: meshwork.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec: {service: orders}\n"
        let set = try PolicyLoader.load(yaml: yaml + traffic, file: "x.yaml").flatMap { PolicySet().applying($0) }.get()
            .0
        #expect(
            set.slice(for: "orders", destinations: []).map(\.key.description) == [
                "Service/orders", "TrafficPolicy/t", "AuthorizationPolicy/a",
            ], "its own TrafficPolicy too: the rate limits its sidecar applies")
        #expect(
            set.slice(for: "frontend", destinations: ["orders"]).map(\.key.description)
                == ["Service/frontend", "Service/orders", "TrafficPolicy/t"])
    }
}

@Suite struct AdmissionGateTests {
    /// 300 arrivals at once against 20 immediate + 200/s: the first 20 go at once, the rest in arrival order at
    /// about the rate, and every one gets in.
    @Test func aStormIsLetInAtTheRateInArrivalOrder() async {
        let gate = AdmissionGate(ratePerSecond: 200, burst: 20)
        let order = OrderLog()
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<300 {
                group.addTask {
                    let place = await gate.admit()
                    await order.append(i, place: place, at: ContinuousClock.now - start)
                }
                // Arrivals are in index order (each task enqueues before the next is created).
                try? await Task.sleep(for: .microseconds(200))
            }
        }
        let admitted = await order.entries
        #expect(admitted.count == 300, "nobody starved")
        let elapsed = admitted.map(\.at).max()!
        #expect(elapsed >= .milliseconds(1200), "280 waited at 200/s: at least ~1.4 s, took \(elapsed)")
        // Loose on purpose: on shared cores (or beside other tests) scheduling alone can take seconds; this only
        // catches a gate that stalls, not one that is a little slow.
        #expect(elapsed < .seconds(30), "and it does not stall: \(elapsed)")
        let byPlace = admitted.sorted { $0.place < $1.place }.map(\.index).filter { $0 >= 40 }
        #expect(byPlace == byPlace.sorted(), "first come, first served")
        #expect(await gate.delayed >= 250)
    }
}

private actor OrderLog {
    var entries: [(index: Int, place: Int, at: Duration)] = []
    func append(_ i: Int, place: Int, at d: Duration) { entries.append((i, place, d)) }
}
