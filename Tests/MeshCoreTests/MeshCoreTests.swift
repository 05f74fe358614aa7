import Foundation
import MeshCore
import Testing

@Suite struct NameAndAddressTests {
    @Test(arguments: ["orders", "a", "web-1", String(repeating: "x", count: 63)])
    func validServiceNames(_ name: String) throws { #expect(try ServiceName(name).value == name) }

    @Test(arguments: ["", "Orders", "-a", "a-", "a_b", "a.b", String(repeating: "x", count: 64)])
    func invalidServiceNames(_ name: String) {
        #expect(throws: MeshError(.invalidName, "")) { try ServiceName(name) }
    }

    @Test func spiffeIDs() throws {
        let id = try SPIFFEID(parsing: "spiffe://mesh.local/svc/orders")
        #expect(id.trustDomain.name == "mesh.local")
        #expect(id.service?.value == "orders")
        #expect(id == .workload(try ServiceName("orders"), in: .default))
        #expect(try SPIFFEID(parsing: "spiffe://mesh.local/control").service == nil)
        for bad in [
            "http://mesh.local/svc/x", "spiffe://mesh.local", "spiffe://mesh.local/svc//x", "spiffe://mesh.local/svc/",
            "spiffe://Mesh/x", "spiffe://m/a/../b",
        ] {
            #expect(throws: MeshError(.invalidIdentity, "")) { try SPIFFEID(parsing: bad) }
        }
    }

    @Test func hostPorts() throws {
        #expect(try HostPort(parsing: "127.0.0.1:15001") == HostPort(host: "127.0.0.1", port: 15001))
        #expect(try HostPort(parsing: "[::1]:80").host == "::1")
        #expect(try HostPort(parsing: "0.0.0.0:0", allowPortZero: true).isWildcard)
        for bad in ["127.0.0.1", "127.0.0.1:0", ":80", "h:70000", "h:x"] {
            #expect(throws: MeshError(.invalidAddress, "")) { try HostPort(parsing: bad) }
        }
    }

    @Test func durations() throws {
        #expect(try Duration(parsing: "250ms") == .milliseconds(250))
        #expect(try Duration(parsing: "1h30m") == .seconds(5400))
        #expect(try Duration(parsing: "24h") == .seconds(86400))
        for bad in ["", "5", "5x", "ms", "1h5"] {
            #expect(throws: MeshError(.invalidDuration, "")) { try Duration(parsing: bad) }
        }
    }
}

@Suite struct CommandLineFlagsTests {
    let known: Set<String> = ["outbound", "upstream", "service"]

    @Test func flagWinsOverItsEnvironmentTwin() throws {
        let f = try CommandLineFlags(
            arguments: ["--outbound", "127.0.0.1:1"],
            environment: ["MESH_OUTBOUND": "127.0.0.1:2", "MESH_SERVICE": "a"], known: known)
        #expect(f.string("outbound") == "127.0.0.1:1")
        #expect(f.string("service") == "a")
        #expect(f.source(of: "service") == "MESH_SERVICE")
    }

    @Test func equalsFormAndRepeatableFlags() throws {
        let f = try CommandLineFlags(
            arguments: ["--upstream=a=1", "--upstream", "b=2"], environment: [:], known: known, repeatable: ["upstream"]
        )
        #expect(f.strings("upstream") == ["a=1", "b=2"])
        let e = try CommandLineFlags(
            arguments: [], environment: ["MESH_UPSTREAM": "a=1,b=2"], known: known, repeatable: ["upstream"])
        #expect(e.strings("upstream") == ["a=1", "b=2"])
    }

    @Test func errorsAreOneLineNamingTheFlag() throws {
        do {
            _ = try CommandLineFlags(arguments: ["--nope", "1"], environment: [:], known: known)
            Issue.record("unknown flag accepted")
        } catch { #expect(error.message.hasPrefix("--nope is not a known flag")) }
        do {
            _ = try CommandLineFlags(arguments: ["--service", "a", "--service", "b"], environment: [:], known: known)
            Issue.record("duplicate accepted")
        } catch { #expect(error.message.contains("given more than once")) }
        let f = try CommandLineFlags(arguments: ["--outbound", "x:99999"], environment: [:], known: known)
        do {
            _ = try f.optional("outbound") { v throws(MeshError) in try HostPort(parsing: v) }
            Issue.record("bad port accepted")
        } catch {
            #expect(error.message == "--outbound=\"x:99999\": port must be 1...65535")
            #expect(!error.message.contains("\n"))
        }
    }
}

@Suite struct SecureFilesTests {
    @Test func writesAtomicallyWithPrivateModeAndRefusesReadableSecrets() throws {
        let dir = NSTemporaryDirectory() + "securefiles-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SecureFiles.makeDirectory(dir + "/a/b")
        let path = dir + "/a/b/secret"
        try SecureFiles.write("one", to: path)
        try SecureFiles.write("two", to: path)
        #expect(try SecureFiles.readString(path) == "two")
        #expect(SecureFiles.mode(of: path) == 0o600)
        try SecureFiles.requirePrivate(path)
        chmod(path, 0o640)
        #expect(throws: MeshError(.insecureFile, "")) { try SecureFiles.requirePrivate(path) }
        #expect(try SecureFiles.read(dir + "/missing") == nil)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir + "/a/b") == ["secret"], "no temp file left behind")
    }
}

@Suite struct VolatileFilesystemTests {
    @Test func tmpfsIsRecognisedAndAPersistentDirectoryIsNot() throws {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        let tmpfs = mounts.split(separator: "\n").map { $0.split(separator: " ") }.first {
            $0.count > 2 && $0[2] == "tmpfs"
        }
        if let mountPoint = tmpfs.map({ String($0[1]) }) {
            #expect(SecureFiles.isOnVolatileFilesystem(mountPoint + "/join.token"), "\(mountPoint) is tmpfs")
        }
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
        let root = mounts.split(separator: "\n").map { $0.split(separator: " ") }.first { $0.count > 2 && $0[1] == "/" }
        if let root, root[2] != "tmpfs" {
            #expect(!SecureFiles.isOnVolatileFilesystem(here + "/join.token"))
        }
    }
}

@Suite struct EndpointHostTests {
    @Test func acceptsAddressesAndSaneNames() {
        for host in ["127.0.0.1", "10.1.2.3", "::1", "fe80::1", "orders", "orders-1.prod.example.com", "a.b.c."] {
            #expect(EndpointHost.problem(host) == nil, "\(host)")
        }
    }

    @Test func refusesWhatNoResolverWouldAccept() {
        let long = String(repeating: "a", count: 10_000)
        for host in [
            "", long, String(repeating: "a", count: 64) + ".com", "-bad.com", "bad-.com", "a..b", "a b", "a_b",
        ] {
            #expect(EndpointHost.problem(host) != nil, "\(host.prefix(20))")
        }
        let message = EndpointHost.problem(long) ?? ""
        #expect(message.utf8.count < 200, "a refusal never echoes the whole host: \(message.prefix(120))")
    }
}
