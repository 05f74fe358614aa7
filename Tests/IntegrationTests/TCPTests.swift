import Foundation
import Testing

/// Opaque TCP for services declared `--protocol tcp`: an upstream bind on the caller's sidecar, mTLS
/// between sidecars, raw bytes to the app; HTTP binds keep working beside it.
@Suite(.serialized)
struct TCPTests {

    @Test func opaqueTCPIsRelayedOverMTLSThroughAnUpstreamBind() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let echoApp = try mesh.p.startPython("\(MeshProcesses.fixtures)/tcp_echo.py", log: "echo-app.log")
        let echo = try mesh.sidecar("echo", app: echoApp, extra: ["--protocol", "tcp"])
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        _ = try mesh.sidecar("orders", app: ordersApp)
        let (caller, binds) = try mesh.caller(binding: ["echo", "orders"])
        let (echoBind, ordersBind) = (binds["echo"]!, binds["orders"]!)

        // 1 MiB of random bytes out and back, compared byte for byte.
        let client = """
            import os, socket, sys
            host, port = sys.argv[1].rsplit(":", 1)
            data = os.urandom(1 << 20)
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            print("echo ok" if got == data else f"echo mismatch {len(got)}")
            """
        let r = try mesh.p.run("/usr/bin/python3", ["-c", client, echoBind], timeout: 30)
        #expect(r.output.contains("echo ok"), "\(r.output)")
        // Counted per peer, both ends: one connection, the MiB each way (the caller sent it to echo; echo's
        // sidecar received it from the caller).
        let mib = Double(1 << 20)
        #expect(try mesh.metric(caller, #"mesh_tcp_connections_total{direction="outbound",peer_service="echo"}"#) == 1)
        #expect(
            try mesh.metric(caller, #"mesh_tcp_bytes_total{direction="outbound",peer_service="echo",flow="sent"}"#)
                == mib)
        #expect(
            try mesh.metric(caller, #"mesh_tcp_bytes_total{direction="outbound",peer_service="echo",flow="received"}"#)
                == mib)
        #expect(
            try mesh.metric(echo, #"mesh_tcp_bytes_total{direction="inbound",peer_service="caller",flow="received"}"#)
                == mib)

        // The bind to an HTTP service is still HTTP.
        let http = try mesh.p.run("/usr/bin/curl", ["-s", "-i", "--max-time", "10", "http://\(ordersBind)/orders"])
        #expect(
            http.output.hasPrefix("HTTP/1.1 200") && http.output.contains("spiffe://mesh.local/svc/caller"),
            "\(http.output)")

        // The TCP service's inbound still demands a mesh certificate.
        let probe = try mesh.p.run(
            "/usr/bin/openssl", ["s_client", "-connect", echo.inbound, "-quiet", "-tls1_3"], stdin: "hello\n",
            timeout: 10)
        #expect(!probe.output.contains("hello"), "no echo without a client certificate: \(probe.output)")
    }
}
