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
        let gateway = policy.adopt(
            PushedPolicy(
                version: 3,
                documents: [Data(#"{"apiVersion":"meshwork.dev/v1","kind":"Gateway","metadata":{"name":"edge"}}"#.utf8)]
            ))
        #expect(
            gateway?.hasPrefix("version 3 document 1 cannot be applied by this sidecar") == true, "\(gateway ?? "")")
        #expect(gateway?.contains(#"kind: unknown kind "Gateway""#) == true, "\(gateway ?? "")")
        #expect(policy.current.version == 1, "refused versions change nothing")

        // A restart starts from the last good version on disk.
        let again = SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: Logger(label: "t"))
        #expect(again.current == policy.current)
    }
}

@Suite struct PolicySnapshotTests {
    let orders = try! ServiceName("orders")

    func json(_ yaml: String) -> Data {
        try! PolicyLoader.load(yaml: yaml, file: "p.yaml").get()[0].document.canonicalJSON()
    }

    @Test func aFieldThisSidecarDoesNotKnowRefusesTheVersionAndThePreviousStays() throws {
        let policy = SidecarPolicy(path: nil, service: orders, appProtocol: .http, logger: Logger(label: "t"))
        let traffic = json(
            """
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: payments}
            spec: {service: payments, timeouts: {request: 1500ms, connect: 2s}, retries: {attempts: 3, perTryTimeout: 500ms}}
            """)
        #expect(policy.adopt(PushedPolicy(version: 4, documents: [traffic])) == nil)
        let payments = try ServiceName("payments")
        let compiled = policy.snapshot.destination(payments)
        #expect(compiled.requestTimeout == .milliseconds(1500))
        #expect(compiled.connectTimeout == .seconds(2))
        #expect(compiled.retries.attempts == 3 && compiled.retries.perTryTimeout == .milliseconds(500))
        #expect(compiled.retries.budgetPercent == 20 && compiled.retries.budgetMinPerSecond == 10)
        #expect(compiled.loadBalancing == .peakEWMA, "the default")

        // A newer control plane sends a field this sidecar would silently drop with plain Codable.
        var object = try JSONSerialization.jsonObject(with: traffic) as! [String: Any]
        var spec = object["spec"] as! [String: Any]
        spec["outlierDetection"] = ["consecutive5xx": 5]  // Envoy's name, not ours
        object["spec"] = spec
        let newer = try JSONSerialization.data(withJSONObject: object)
        let refusal = policy.adopt(PushedPolicy(version: 5, documents: [newer]))
        #expect(refusal?.contains("spec.outlierDetection.consecutive5xx: unknown field") == true, "\(refusal ?? "")")
        #expect(policy.snapshot.version == 4 && policy.current.version == 4, "the previous version stays in force")
        #expect(policy.snapshot.destination(payments).requestTimeout == .milliseconds(1500))
    }

    @Test func destinationsWithoutPolicyGetTheDefaultsAndTheOwnServiceIsInbound() {
        let policy = SidecarPolicy(path: nil, service: orders, appProtocol: .http, logger: Logger(label: "t"))
        let service = json(
            "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: orders}\nspec: {protocol: http}\n")
        #expect(policy.adopt(PushedPolicy(version: 1, documents: [service])) == nil)
        #expect(policy.snapshot.inbound.declaredProtocol == .http)
        let other = policy.snapshot.destination(try! ServiceName("billing"))
        #expect(other.requestTimeout == nil && other.loadBalancing == .peakEWMA)
        #expect(other.retries.attempts == 2 && other.retries.retries(status: 503) == false, "only the safe retries")
        #expect(other.connectTimeout == .seconds(1) && other.idleTimeout == .minutes(5))
        #expect(other.outlier.consecutiveFailures == 5 && other.circuit.maxRequests == 4096)
    }
}

extension PolicyDocument {
    fileprivate var asService: ServicePolicy? {
        if case .service(let s) = self { return s }
        return nil
    }
}
