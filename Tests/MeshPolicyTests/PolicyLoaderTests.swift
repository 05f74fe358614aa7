import Foundation
import MeshCore
import MeshPolicy
import Testing

@Suite struct PolicyLoaderTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func everyFileInPoliciesValidates() throws {
        let dir = Self.root.appendingPathComponent("policies")
        let files = FileManager.default.enumerator(atPath: dir.path)!.compactMap { $0 as? String }.filter {
            $0.hasSuffix(".yaml")
        }
        #expect(!files.isEmpty)
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            if case .failure(let errors) = PolicyLoader.load(yaml: text, file: "policies/\(file)") {
                Issue.record("policies/\(file) does not validate:\n\(errors)")
            }
        }
    }

    @Test func aValidServiceBecomesATypedPolicy() throws {
        let yaml =
            "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata:\n  name: orders\nspec:\n  protocol: grpc\n  ports:\n    - port: 9090\n"
        let services = try PolicyLoader.load(yaml: yaml, file: "a.yaml").get()
        #expect(services.count == 1 && services[0].protocol == .grpc && services[0].ports.first?.number == 9090)
    }

    /// Golden: what a user reads for a document with several mistakes — all of them, with positions.
    @Test func everyProblemIsReportedWithFileLineColumnAndKeyPath() {
        let yaml = """
            apiVersion: meshwork.dev/v2
            kind: Service
            metadata:
              name: Orders
            spec:
              protocol: smtp
              retries: 3
              ports:
                - port: 0
                - name: x
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata:
              name: orders
            ---
            kind: Gateway
            """
        guard case .failure(let errors) = PolicyLoader.load(yaml: yaml, file: "policies/bad.yaml") else {
            Issue.record("bad policy accepted")
            return
        }
        #expect(
            errors.description == """
                policies/bad.yaml:1:13: apiVersion: must be meshwork.dev/v1 (got "meshwork.dev/v2")
                policies/bad.yaml:4:9: metadata.name: service name "Orders" must use only a-z, 0-9 and '-', and start and end with a letter or digit
                policies/bad.yaml:6:13: spec.protocol: must be one of http, http2, grpc, tcp (got "smtp")
                policies/bad.yaml:7:3: spec.retries: unknown field (allowed: protocol, ports)
                policies/bad.yaml:9:13: spec.ports[0].port: must be 1...65535 (got 0)
                policies/bad.yaml:10:7: spec.ports[1].port: is required
                policies/bad.yaml:13:7: kind: TrafficPolicy is not supported by this release yet
                policies/bad.yaml:17:1: apiVersion: is required (meshwork.dev/v1)
                policies/bad.yaml:17:7: kind: unknown kind "Gateway" (known: Service)
                """)
    }

    @Test func syntaxErrorsCarryTheirPosition() {
        guard case .failure(let errors) = PolicyLoader.load(yaml: "kind: [Service\nmetadata: {", file: "x.yaml") else {
            Issue.record("accepted")
            return
        }
        #expect(
            errors.issues.count == 1 && errors.issues[0].message.hasPrefix("YAML syntax") && errors.issues[0].line >= 1)
    }

    @Test func duplicatesInOneApplyAreRefused() {
        let doc = "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata:\n  name: orders\n"
        guard case .failure(let errors) = PolicyLoader.load(yaml: doc + "---\n" + doc, file: "d.yaml") else {
            Issue.record("accepted")
            return
        }
        #expect(errors.description.contains("defined twice"))
    }
}
