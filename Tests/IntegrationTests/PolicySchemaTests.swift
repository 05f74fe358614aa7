import Foundation
import Testing

/// policies/schema/meshwork-v1.schema.json checked by a real JSON Schema validator (python3-jsonschema,
/// Draft 2020-12): every example under policies/ passes, the documents mesh-control stores and serves back
/// pass, and documents with the mistakes it is there to catch fail.
@Suite struct PolicySchemaTests {
    static let schema = "\(MeshProcesses.packageRoot)/policies/schema/meshwork-v1.schema.json"
    static let checker = "\(MeshProcesses.fixtures)/check_schema.py"

    func check(_ files: [String], in p: MeshProcesses) throws -> [Substring] {
        let r = try p.run("/usr/bin/python3", [Self.checker, Self.schema] + files)
        #expect(r.status == 0, "\(r.output)")
        return r.output.split(separator: "\n")
    }

    @Test func everyExampleAndEveryServedDocumentMatchesTheSchema() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let dir = "\(MeshProcesses.packageRoot)/policies/examples"
        let examples = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }
            .map { "\(dir)/\($0)" }
        let lines = try check(examples, in: mesh.p)
        #expect(lines.count == 4 && lines.allSatisfy { $0.hasPrefix("ok ") }, "\(lines)")

        // What mesh-control serves back (defaults filled in) is itself valid input.
        #expect(try mesh.p.run("meshctl", ["apply", "-f", dir], env: mesh.meshctlEnv).status == 0)
        let served = "\(mesh.p.dir)/served.yaml"
        try mesh.p.run("meshctl", ["get", "-o", "yaml"], env: mesh.meshctlEnv).output
            .write(toFile: served, atomically: true, encoding: .utf8)
        let back = try check([served], in: mesh.p)
        #expect(back.count == 4 && back.allSatisfy { $0.hasPrefix("ok ") }, "\(back)")
    }

    @Test func theSchemaCatchesTheUsualMistakes() throws {
        let p = try MeshProcesses()
        defer { p.stop() }
        let bad = "\(p.dir)/bad.yaml"
        try """
        apiVersion: meshwork.dev/v1
        kind: Service
        metadata: {name: Orders}
        spec: {protocol: smtp}
        ---
        apiVersion: meshwork.dev/v1
        kind: TrafficPolicy
        metadata: {name: orders}
        spec: {service: orders, retries: {attempts: 11}, timeout: 5s}
        ---
        apiVersion: meshwork.dev/v1
        kind: AuthorizationPolicy
        metadata: {name: orders}
        spec: {service: orders, rules: [{from: [], to: [{methods: [get]}]}]}
        """.write(toFile: bad, atomically: true, encoding: .utf8)
        let lines = try check([bad], in: p)
        #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("invalid ") }, "\(lines)")
        #expect(lines[0].contains("metadata.name") && lines[0].contains("spec.protocol"), "\(lines[0])")
        #expect(
            lines[1].contains("spec.retries.attempts") && lines[1].contains("'timeout' was unexpected"), "\(lines[1])")
        #expect(
            lines[2].contains("spec.rules.0.from") && lines[2].contains("spec.rules.0.to.0.methods.0"), "\(lines[2])")
    }
}
