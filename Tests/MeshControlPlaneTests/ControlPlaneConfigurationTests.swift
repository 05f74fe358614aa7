import MeshCore
import Testing

@testable import MeshControlPlane

@Suite struct ControlPlaneConfigurationTests {
    @Test func defaultsAndTwins() throws {
        let c = try ControlPlaneConfiguration(
            arguments: ["--data-dir", "/d"], environment: ["MESH_TRUST_DOMAIN": "corp.example"])
        #expect(c.listen == HostPort(host: "127.0.0.1", port: 7443))
        #expect(c.trustDomain.name == "corp.example")
        #expect(c.certificateLifetime == .seconds(86400))
        #expect(c.leaseTTL == .seconds(15) && c.admissionRate == 500)
    }

    @Test func badValuesNameTheFlag() {
        for (args, expected) in [
            (["--data-dir", "/d", "--cert-ttl", "1s"], "--cert-ttl=\"1s\": must be 10s...720h"),
            (["--data-dir", "/d", "--lease-ttl", "1s"], "--lease-ttl=\"1s\": must be 2s...10m"),
            (["--data-dir", "/d", "--admission-rate", "0"], "--admission-rate=\"0\": must be 1...100000"),
            (["--data-dir", "/d", "--trust-domain", "UPPER"], "--trust-domain=\"UPPER\""),
            ([], "--data-dir is required"),
        ] {
            do {
                _ = try ControlPlaneConfiguration(arguments: args, environment: [:])
                Issue.record("\(args) accepted")
            } catch {
                #expect(error.message.hasPrefix(expected), "\(error.message)")
            }
        }
    }
}
