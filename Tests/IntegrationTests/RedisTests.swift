import Foundation
import Testing

/// Opaque TCP with a real database protocol: a Redis server from apt behind a sidecar declared `tcp`, used
/// through the caller's upstream bind by Redis's own client (redis-cli and redis-benchmark).
@Suite(.serialized)
struct RedisTests {
    @Test func redisWorksThroughTheMeshWithItsOwnClient() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let port = try MeshProcesses.freePort()
        _ = try mesh.p.start(
            "/usr/bin/redis-server",
            ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", mesh.p.dir],
            log: "redis.log")
        try mesh.p.waitForPort(port)
        _ = try mesh.sidecar("cache", app: port, extra: ["--protocol", "tcp"])
        let bind = try mesh.caller(binding: ["cache"]).binds["cache"]!
        let (host, bindPort) = (String(bind.split(separator: ":")[0]), String(bind.split(separator: ":")[1]))

        let set = try mesh.p.run("/usr/bin/redis-cli", ["-h", host, "-p", bindPort, "SET", "order:1", "coffee"])
        #expect(set.output.contains("OK"), "\(set.output)")
        let get = try mesh.p.run("/usr/bin/redis-cli", ["-h", host, "-p", bindPort, "GET", "order:1"])
        #expect(get.output.contains("coffee"), "\(get.output)")
        // Written through the mesh, read directly: the same server.
        let direct = try mesh.p.run("/usr/bin/redis-cli", ["-p", "\(port)", "GET", "order:1"])
        #expect(direct.output.contains("coffee"), "\(direct.output)")

        // Pipelined load from 10 clients: every reply arrives, in order.
        let load = try mesh.p.run(
            "/usr/bin/redis-benchmark",
            ["-h", host, "-p", bindPort, "-n", "20000", "-c", "10", "-P", "16", "-t", "set,get", "-q"], timeout: 120)
        #expect(load.status == 0 && load.output.contains("SET:") && load.output.contains("GET:"), "\(load.output)")
        let count = try mesh.p.run("/usr/bin/redis-cli", ["-p", "\(port)", "DBSIZE"])
        #expect(count.output.contains("2"), "order:1 and redis-benchmark's key: \(count.output)")
    }
}
