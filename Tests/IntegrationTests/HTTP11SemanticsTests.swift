import Foundation
import Testing

/// HTTP/1.1 details end to end through two sidecars, against an app whose wire format the test controls
/// (`Fixtures/http11_app.py`) and curl as the client.
@Suite(.serialized)
struct HTTP11SemanticsTests {
    @Test func headChunkedTrailersCloseAndInformationalResponsesPassThrough() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let port = try mesh.p.startPython("\(MeshProcesses.fixtures)/http11_app.py", log: "app.log")
        _ = try mesh.sidecar("orders", app: port)
        let frontend = try mesh.sidecar("frontend", app: 1)
        func curl(_ args: [String]) throws -> String {
            try mesh.p.run(
                "/usr/bin/curl", ["-s", "--max-time", "10"] + args, env: ["http_proxy": "http://\(frontend.outbound)"]
            ).output
        }

        let head = try curl(["-I", "http://orders/sized"])
        #expect(head.hasPrefix("HTTP/1.1 200") && head.lowercased().contains("content-length: 5"), "\(head)")

        let chunked = try curl(["-i", "--raw", "http://orders/chunked"])
        #expect(chunked.lowercased().contains("transfer-encoding: chunked"), "\(chunked)")
        #expect(chunked.lowercased().contains("trailer: x-checksum"), "the Trailer header is end-to-end")
        #expect(
            chunked.contains("one,") && chunked.contains("three") && chunked.contains("x-checksum: 42"), "\(chunked)")

        let close = try curl(["-i", "http://orders/close", "http://orders/sized"])
        #expect(close.components(separatedBy: "HTTP/1.1 200").count == 3, "the client keeps its connection: \(close)")

        let hints = try curl(["-i", "http://orders/hints"])
        #expect(hints.hasPrefix("HTTP/1.1 103"), "103 Early Hints reaches the client: \(hints)")
        #expect(hints.contains("HTTP/1.1 200"))

        let chunkedUpload = try mesh.p.run(
            "/bin/bash", ["-c", "head -c 300000 /dev/zero | curl -s --max-time 10 -T - -X POST http://orders/echo"],
            env: ["http_proxy": "http://\(frontend.outbound)"]
        ).output
        #expect(chunkedUpload.contains("\"received\": 300000"), "\(chunkedUpload)")

        // Expect: 100-continue is end-to-end: the app's 100 reaches curl, which then sends the body.
        let expect = try curl([
            "-i", "-H", "Expect: 100-continue", "-d", String(repeating: "x", count: 2000), "http://orders/echo",
        ])
        #expect(expect.hasPrefix("HTTP/1.1 100"), "\(expect)")
        #expect(expect.contains("\"received\": 2000"))
    }
}
