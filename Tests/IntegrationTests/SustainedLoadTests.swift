import Foundation
import Testing

/// Many requests through a sidecar pair leave their memory where it was: per-request state (a forwarder per
/// HTTP/2 stream, a pooled keep-alive connection's bookkeeping) is freed with its request.
@Suite(.serialized)
struct SustainedLoadTests {
    @Test func memoryStaysFlatAcrossManyRequests() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: ordersApp)
        let (caller, binds) = try mesh.caller(binding: ["orders"])
        let pids = [orders.process.processIdentifier, caller.process.processIdentifier]

        // h2c from the client, h2 between the sidecars (a stream and a forwarder per request on each side),
        // HTTP/1.1 keep-alive from the orders sidecar to the app (its pooled connections are reused).
        func load(_ requests: Int) throws {
            let r = try mesh.p.run(
                "/usr/bin/h2load", ["-n", "\(requests)", "-c", "8", "-m", "8", "http://\(binds["orders"]!)/orders"],
                timeout: 300)
            #expect(r.output.contains("\(requests) succeeded, 0 failed, 0 errored"), "\(r.output)")
        }
        try load(4000)  // warm: pools, buffers, allocator arenas
        let before = pids.map(Self.rssKiB)
        try load(30000)
        let after = pids.map(Self.rssKiB)
        print("sustained load: pids \(pids), RSS KiB before \(before), after \(after)")
        for (name, (b, a)) in zip(["orders", "caller"], zip(before, after)) {
            // Leaking even 300 bytes per request would add about 9 MiB here.
            #expect(a - b < 4 * 1024, "\(name) sidecar RSS grew from \(b) KiB to \(a) KiB over 30000 requests")
        }
    }

    static func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
