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
        #expect(c.listenerLimits == .controlPlane)
        #expect(c.maxInstancesPerService == 1000 && c.maxInstancesPerConnection == 1)
    }

    @Test func frontDoorAndRegistrationLimitsFromFlagsAndTwins() throws {
        let c = try ControlPlaneConfiguration(
            arguments: ["--data-dir", "/d", "--max-connections", "20000", "--handshake-timeout", "3s"],
            environment: ["MESH_IDLE_TIMEOUT": "2m", "MESH_MAX_INSTANCES_PER_SERVICE": "50"])
        #expect(c.listenerLimits.maxConnections == 20000)
        #expect(c.listenerLimits.handshakeTimeout == .seconds(3) && c.listenerLimits.idleTimeout == .seconds(120))
        #expect(c.listenerLimits.backlog == 4096)
        #expect(c.maxInstancesPerService == 50 && c.maxInstancesPerConnection == 1)
    }

    @Test func badValuesNameTheFlag() {
        for (args, expected) in [
            (["--data-dir", "/d", "--cert-ttl", "1s"], "--cert-ttl=\"1s\": must be 10s...720h"),
            (["--data-dir", "/d", "--lease-ttl", "1s"], "--lease-ttl=\"1s\": must be 2s...10m"),
            (["--data-dir", "/d", "--admission-rate", "0"], "--admission-rate=\"0\": must be 1...100000"),
            (["--data-dir", "/d", "--trust-domain", "UPPER"], "--trust-domain=\"UPPER\""),
            (["--data-dir", "/d", "--max-connections", "0"], "--max-connections=\"0\": must be 1...1000000"),
            (["--data-dir", "/d", "--handshake-timeout", "10m"], "--handshake-timeout=\"10m\": must be 100ms...5m"),
            (["--data-dir", "/d", "--idle-timeout", "0s"], "--idle-timeout=\"0s\": must be 1s...24h"),
            (["--data-dir", "/d", "--max-instances-per-connection", "x"], "--max-instances-per-connection=\"x\""),
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
