import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshPolicy
import Testing

@testable import MeshSidecar

/// The sidecar's policy: adopted versions are persisted (0600) before they are acknowledged and survive a
/// restart; versions it cannot apply are refused with the reason and change nothing.
@Suite struct SidecarPolicyTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sidecar-policy-\(UUID().uuidString)").path

    func pushed(_ version: UInt64, protocol proto: String) -> PushedPolicy {
        let service = PolicyDocument.service(
            try! PolicyLoader.load(
                yaml:
                    "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: orders}\nspec: {protocol: \(proto)}\n",
                file: "s.yaml"
            ).get()[0].document.asService!)
        return PushedPolicy(version: version, documents: [service.canonicalJSON()])
    }

    @Test func adoptsPersistsAndRefusesWithAReason() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/policy.json"
        let orders = try ServiceName("orders")
        let policy = SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: Logger(label: "t"))
        #expect(policy.adopt(pushed(1, protocol: "http")) == nil)
        #expect(policy.current.version == 1)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)

        let refusal = policy.adopt(pushed(2, protocol: "tcp"))
        #expect(
            refusal
                == "version 2: Service orders declares protocol tcp, but this sidecar runs --protocol http; restart it with --protocol tcp or correct the Service"
        )
        #expect(
            policy.adopt(PushedPolicy(version: 3, documents: [Data("{\"kind\":\"Gateway\"}".utf8)]))?.hasPrefix(
                "version 3: a document this sidecar cannot read") == true)
        #expect(policy.current.version == 1, "refused versions change nothing")

        // A restart starts from the last good version on disk.
        let again = SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: Logger(label: "t"))
        #expect(again.current == policy.current)
    }
}

extension PolicyDocument {
    fileprivate var asService: ServicePolicy? {
        if case .service(let s) = self { return s }
        return nil
    }
}
