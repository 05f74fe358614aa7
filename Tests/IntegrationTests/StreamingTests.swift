import Foundation
import Testing

/// Large bodies stream through two sidecars both ways with bounded sidecar memory: nothing is buffered whole.
@Suite(.serialized)
struct StreamingTests {
    static let size = 256 * 1024 * 1024

    @Test func largeUploadsAndDownloadsStreamWithBoundedMemory() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        let orders = try mesh.sidecar("orders", app: ordersApp)
        let frontend = try mesh.sidecar("frontend", app: 1)
        let pids = [orders.process.processIdentifier, frontend.process.processIdentifier]
        let before = pids.map(peakRSS)

        let file = "\(mesh.p.dir)/upload.bin"
        #expect(try mesh.p.run("/usr/bin/truncate", ["-s", "\(Self.size)", file]).status == 0)
        let up = try mesh.p.run(
            "/usr/bin/curl", ["-s", "--max-time", "120", "-T", file, "http://orders/sink"],
            env: ["http_proxy": "http://\(frontend.outbound)"], timeout: 130)
        #expect(up.output.contains("\"received\": \(Self.size)"), "\(up.output)")

        let down = try mesh.p.run(
            "/usr/bin/curl",
            [
                "-s", "--max-time", "120", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                "http://orders/source?bytes=\(Self.size)",
            ],
            env: ["http_proxy": "http://\(frontend.outbound)"], timeout: 130)
        #expect(down.output == "200 \(Self.size)", "\(down.output)")

        let after = pids.map(peakRSS)
        for (b, a) in zip(before, after) {
            // 256 MiB crossed each sidecar twice; their peak memory may grow by buffers, not by bodies.
            #expect(a - b < 64 * 1024, "peak RSS grew from \(b) KiB to \(a) KiB")
        }
        print("streaming: peak RSS KiB before \(before), after \(after)")
    }

    func peakRSS(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
