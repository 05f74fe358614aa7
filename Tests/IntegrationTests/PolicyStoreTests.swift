import Foundation
import Testing

/// The policy store through real processes: `meshctl validate/apply/get/delete/history/rollback` against
/// `mesh-control`, and `kill -9` of the control plane in the middle of applies.
@Suite(.serialized)
struct PolicyStoreTests {
    static let examples = "\(MeshProcesses.packageRoot)/policies"

    func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test func applyGetHistoryRollbackAndDelete() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let p = mesh.p
        func meshctl(_ args: [String]) throws -> (status: Int32, output: String) {
            try p.run("meshctl", args, env: mesh.meshctlEnv)
        }

        // Offline validation of the repo's examples, then a dry run stores nothing.
        let valid = try meshctl(["validate", "-f", Self.examples])
        #expect(valid.status == 0 && valid.output.hasPrefix("valid: 4 documents"), "\(valid.output)")
        let dry = try meshctl(["apply", "--dry-run", "-f", Self.examples])
        #expect(dry.status == 0 && dry.output.contains("Service/orders created (dry run)"), "\(dry.output)")
        #expect(
            try meshctl(["history", "-o", "json"]).output.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")

        // Apply: one version for all four documents.
        let applied = try meshctl(["apply", "-f", Self.examples])
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.output.contains("TrafficPolicy/orders created") && applied.output.hasSuffix("version 1\n"))
        let again = try meshctl(["apply", "-f", Self.examples])
        #expect(again.output.contains("no change; version 1 is current"), "\(again.output)")

        let table = try meshctl(["get"])
        #expect(
            table.output.contains("version 1") && table.output.contains("AuthorizationPolicy  orders    orders"),
            "\(table.output)")
        let one = try json(try meshctl(["get", "trafficpolicy", "orders", "-o", "json"]).output) as? [String: Any]
        let item = (one?["items"] as? [[String: Any]])?.first
        #expect(
            ((item?["spec"] as? [String: Any])?["timeouts"] as? [String: String])?["request"] == "5s",
            "\(String(describing: one))")

        // An invalid change is refused with positions and changes nothing.
        let bad = "\(p.dir)/bad.yaml"
        try """
        apiVersion: meshwork.dev/v1
        kind: TrafficPolicy
        metadata: {name: orders}
        spec:
          service: orders
          split: [{subset: blue, weight: 100}]
        """.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try meshctl(["apply", "-f", bad])
        #expect(refused.status == 1 && refused.output.hasPrefix(bad), "one issue per line, nothing before it")
        #expect(
            refused.output.contains("\(bad):6:20: spec.split[0].subset: Service orders has no subset \"blue\""),
            "\(refused.output)")
        let offline = try meshctl(["validate", "-f", bad])
        #expect(offline.status == 0, "offline validation checks each document; references need the live set")

        // A real change, then history and rollback.
        let canary = "\(p.dir)/canary.yaml"
        try """
        apiVersion: meshwork.dev/v1
        kind: TrafficPolicy
        metadata: {name: orders}
        spec:
          service: orders
          split: [{subset: stable, weight: 50}, {subset: canary, weight: 50}]
        """.write(toFile: canary, atomically: true, encoding: .utf8)
        #expect(try meshctl(["apply", "-f", canary]).output.contains("TrafficPolicy/orders configured"))
        let history = try json(try meshctl(["history", "-o", "json"]).output) as? [[String: Any]] ?? []
        #expect(history.map { $0["version"] as? Int } == [2, 1], "\(history)")
        #expect(history.first?["summary"] as? String == "TrafficPolicy/orders configured")

        let back = try meshctl(["rollback", "1"])
        #expect(back.status == 0 && back.output.contains("version 3"), "\(back.output)")
        let now = try meshctl(["get", "TrafficPolicy", "orders", "-o", "yaml"]).output
        #expect(now.contains("# version 3") && now.contains("weight: 90"), "\(now)")
        #expect(
            try meshctl(["get", "TrafficPolicy", "orders", "--version", "2", "-o", "yaml"]).output.contains(
                "weight: 50"))
        let missing = try meshctl(["rollback", "99"])
        #expect(missing.status == 1 && missing.output.contains("there is no policy version 99"), "\(missing.output)")

        // Deleting a Service others refer to is refused; deleting in order works.
        let refusedDelete = try meshctl(["delete", "Service", "orders"])
        #expect(refusedDelete.status == 1 && refusedDelete.output.contains("is not defined"), "\(refusedDelete.output)")
        #expect(try meshctl(["delete", "TrafficPolicy", "orders"]).output.contains("TrafficPolicy/orders deleted"))
        #expect(try meshctl(["get", "TrafficPolicy", "orders"]).status == 1)

        // Everything survives a restart of the control plane.
        mesh.controlProcess.terminate()
        mesh.controlProcess.waitUntilExit()
        _ = try p.start(
            "mesh-control", ["serve", "--data-dir", "\(p.dir)/control", "--listen", "127.0.0.1:0"], log: "control-2.log"
        )
        _ = try p.field("control-2.log", "address")
        let after = try json(try meshctl(["history", "-o", "json"]).output) as? [[String: Any]] ?? []
        #expect(after.first?["version"] as? Int == 4 && after.count == 4, "\(after)")
    }

    /// Applies run back to back while the control plane is killed with SIGKILL at a random moment, eight
    /// times. Every version meshctl was told about is there after the restart with exactly its documents, and
    /// no version holds half an apply (each apply writes two documents with the same marker).
    @Test func killNineDuringAppliesLosesNothingAcknowledgedAndHalvesNothing() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        let data = "\(p.dir)/control"
        let env = ["MESHCTL_CONFIG": "\(data)/admin/meshctl.yaml"]
        var acknowledged: [Int: String] = [:]  // version → marker
        for round in 0..<8 {
            let control = try p.start(
                "mesh-control", ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"], log: "control-\(round).log")
            _ = try p.field("control-\(round).log", "address")
            // A loop of applies in a shell, each recording "marker version" once meshctl reports success.
            let script = """
                for i in $(seq 1 400); do
                  m="r\(round)-$i"
                  printf 'apiVersion: meshwork.dev/v1\\nkind: Service\\nmetadata: {name: orders}\\nspec:\\n  subsets: [{name: s, labels: {marker: %s}}]\\n---\\napiVersion: meshwork.dev/v1\\nkind: Service\\nmetadata: {name: frontend}\\nspec:\\n  subsets: [{name: s, labels: {marker: %s}}]\\n' $m $m > \(p.dir)/a-\(round).yaml
                  out=$(meshctl apply -o json -f \(p.dir)/a-\(round).yaml) || exit 0
                  echo "$m $(echo "$out" | sed -E 's/.*"version":([0-9]+).*/\\1/')" >> \(p.dir)/acks
                done
                """
            let loop = try p.start(
                "/bin/bash", ["-c", script], log: "loop-\(round).log",
                env: env.merging(["PATH": "\(MeshProcesses.binDir()):/usr/bin:/bin"]) { $1 })
            usleep(UInt32.random(in: 150_000...900_000))
            kill(control.processIdentifier, SIGKILL)
            control.waitUntilExit()
            loop.waitUntilExit()
        }
        for line in p.text("acks").split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let version = Int(parts[1]) else { continue }
            acknowledged[version] = String(parts[0])
        }
        #expect(acknowledged.count >= 8, "applies were acknowledged between the kills: \(acknowledged.count)")

        _ = try p.start(
            "mesh-control", ["serve", "--data-dir", data, "--listen", "127.0.0.1:0"], log: "control-final.log")
        _ = try p.field("control-final.log", "address")
        let history =
            try JSONSerialization.jsonObject(
                with: Data(try p.run("meshctl", ["history", "--limit", "1000", "-o", "json"], env: env).output.utf8))
            as? [[String: Any]] ?? []
        let versions = Set(history.compactMap { $0["version"] as? Int })
        #expect(versions.count == history.count && versions == Set(1...(versions.max() ?? 0)), "versions are gapless")
        for version in acknowledged.keys.sorted() {
            #expect(versions.contains(version), "acknowledged version \(version) survived")
        }
        // Spot-check contents: every acknowledged version (up to 40 of them) holds both documents of its apply.
        for (version, marker) in acknowledged.sorted(by: { $0.key < $1.key }).suffix(40) {
            let got = try p.run("meshctl", ["get", "--version", "\(version)", "-o", "json"], env: env).output
            let items =
                (try? JSONSerialization.jsonObject(with: Data(got.utf8)) as? [String: Any])?["items"]
                as? [[String: Any]] ?? []
            let markers = items.map { item -> String in
                let subsets = (item["spec"] as? [String: Any])?["subsets"] as? [[String: Any]]
                return (subsets?.first?["labels"] as? [String: String])?["marker"] ?? "?"
            }
            #expect(
                markers.count == 2 && markers.allSatisfy { $0 == marker }, "version \(version): \(markers) vs \(marker)"
            )
        }
        print("kill -9: \(acknowledged.count) acknowledged applies across 8 kills, \(versions.count) versions stored")
    }
}
