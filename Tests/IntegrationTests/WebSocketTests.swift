import Foundation
import Testing

/// WebSocket upgrades end to end: a real WebSocket server (python3-websockets) behind a sidecar, reached
/// through the caller's HTTP proxy and through an upstream bind; the hop between sidecars is mTLS.
@Suite(.serialized)
struct WebSocketTests {

    @Test func webSocketUpgradesWorkThroughTheProxyAndAnUpstreamBind() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let wsApp = try mesh.p.startPython("\(MeshProcesses.fixtures)/ws_echo.py", log: "ws-app.log")
        _ = try mesh.sidecar("echo", app: wsApp)
        let (caller, binds) = try mesh.caller(binding: ["echo"])
        let bind = binds["echo"]!

        for (address, target) in [(caller.outbound, "http://echo/chat"), (bind, "/chat")] {
            let r = try mesh.p.run(
                "/usr/bin/python3", ["\(MeshProcesses.fixtures)/ws_client.py", address, target], timeout: 30)
            #expect(r.output.contains("HTTP/1.1 101"), "\(target): \(r.output)")
            #expect(r.output.contains("greeting: hello spiffe://mesh.local/svc/caller"), "\(target): \(r.output)")
            #expect(r.output.contains("text: echo ping through the mesh"), "\(target): \(r.output)")
            #expect(r.output.contains("binary intact: True"), "\(target): \(r.output)")
        }
        // Ordinary requests on the same listeners still work after the tunnels.
        let plain = try mesh.curl(via: caller.outbound, "http://echo/")
        #expect(plain.output.contains("HTTP/1.1"), "\(plain.output)")
    }
}
