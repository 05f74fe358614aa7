import Foundation
import Testing

/// HTTP/2 end to end with real clients: h2c from the app (curl, h2load, nghttp), h2 with ALPN between
/// sidecars multiplexing every request on one connection, gRPC (grpcio) unary and bidirectional
/// streaming with trailers and status, and GOAWAY when a sidecar drains.
@Suite(.serialized)
struct HTTP2Tests {

    /// The value of one sample line in Prometheus text, e.g. `name{labels}`.
    func sample(_ metrics: String, _ series: String) -> Double? {
        for line in metrics.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func h2cFromTheAppIsMultiplexedOnOneH2ConnectionBetweenSidecars() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        _ = try mesh.sidecar("orders", app: ordersApp)
        let (caller, binds) = try mesh.caller(binding: ["orders"])
        let bind = binds["orders"]!

        // h2c by prior knowledge from the app; the peer's identity still reaches the app.
        let one = try mesh.p.run(
            "/usr/bin/curl", ["-s", "-i", "--max-time", "10", "--http2-prior-knowledge", "http://\(bind)/orders"])
        #expect(one.output.hasPrefix("HTTP/2 200"), "\(one.output)")
        #expect(one.output.contains("spiffe://mesh.local/svc/caller"), "\(one.output)")
        #expect(one.output.contains("x-mesh-upstream-identity: spiffe://mesh.local/svc/orders"), "\(one.output)")

        // HTTP/1.1 from the app on the same bind goes over pooled HTTP/1.1 keep-alive between the sidecars
        // (cheaper per request than a stream on the h2 hop; see BENCHMARKS.md).
        let h1 = try mesh.p.run("/usr/bin/curl", ["-s", "-i", "--max-time", "10", "http://\(bind)/orders"])
        #expect(h1.output.hasPrefix("HTTP/1.1 200"), "\(h1.output)")

        // 1000 requests, 4 client connections × 25 concurrent streams.
        let load = try mesh.p.run(
            "/usr/bin/h2load", ["-n", "1000", "-c", "4", "-m", "25", "http://\(bind)/orders"], timeout: 120)
        #expect(load.output.contains("1000 succeeded, 0 failed, 0 errored"), "\(load.output)")

        let metrics = try mesh.p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://\(caller.admin)/metrics"])
        #expect(
            sample(metrics.output, #"mesh_peer_connections_opened_total{protocol="h2"}"#) == 1,
            "every request multiplexed on one h2 connection to the peer: \(metrics.output)")
        #expect(
            sample(metrics.output, #"mesh_peer_connections_opened_total{protocol="http/1.1"}"#) == 1,
            "the one HTTP/1.1 request took one HTTP/1.1 connection")
    }

    @Test func grpcUnaryAndBidiStreamingKeepTrailersAndStatus() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let echoApp = try mesh.p.startPython("\(MeshProcesses.fixtures)/grpc_echo.py", log: "grpc-app.log")
        _ = try mesh.sidecar("echo", app: echoApp, extra: ["--protocol", "http2"])
        let (_, binds) = try mesh.caller(binding: ["echo", "ghost"])
        let bind = binds["echo"]!

        let r = try mesh.p.run(
            "/usr/bin/python3", ["\(MeshProcesses.fixtures)/grpc_client.py", bind, "500"], timeout: 60)
        for check in ["unary", "unary-status", "unary-trailers", "bidi", "error-status", "unimplemented"] {
            #expect(r.output.contains("ok \(check) "), "\(check): \(r.output)")
        }
        #expect(!r.output.contains("FAIL"), "\(r.output)")

        // A failure the sidecar itself answers reaches a gRPC client as a gRPC status.
        let ghost = binds["ghost"]!
        let client = """
            import grpc, sys
            try:
                grpc.insecure_channel(sys.argv[1]).unary_unary("/echo.Echo/Unary")(b"x", timeout=10)
                print("no error")
            except grpc.RpcError as e:
                print(e.code(), e.details())
            """
        let failed = try mesh.p.run("/usr/bin/python3", ["-c", client, ghost], timeout: 30)
        #expect(failed.output.contains("StatusCode.UNAVAILABLE meshwork: unknown_service"), "\(failed.output)")
    }

    @Test func aDrainingSidecarSendsGOAWAYAndFinishesInFlightStreams() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let ordersApp = try mesh.p.startApp("orders", log: "orders-app.log")
        _ = try mesh.sidecar("orders", app: ordersApp)
        let (caller, binds) = try mesh.caller(binding: ["orders"])
        let bind = binds["orders"]!

        // A 3 s request is in flight on an h2c connection when the caller's sidecar is told to stop.
        let nghttp = Process()
        nghttp.executableURL = URL(fileURLWithPath: "/usr/bin/nghttp")
        nghttp.arguments = ["-v", "-t", "20", "http://\(bind)/slow?ms=3000"]
        let out = Pipe()
        nghttp.standardOutput = out
        nghttp.standardError = out
        try nghttp.run()
        defer { if nghttp.isRunning { kill(nghttp.processIdentifier, SIGKILL) } }
        Thread.sleep(forTimeInterval: 1)
        kill(caller.process.processIdentifier, SIGTERM)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        nghttp.waitUntilExit()
        #expect(text.contains("recv GOAWAY frame"), "\(text)")
        #expect(text.contains(":status: 200"), "the in-flight stream completes: \(text)")
        #expect(nghttp.terminationStatus == 0, "\(text)")
    }
}
