import Foundation
import Testing

/// Who may call and how much, end to end: AuthorizationPolicy enforced (and audited) by the callee's sidecar for
/// HTTP and TCP, fail closed when the policy cannot be loaded, and per-identity rate limits — with real callers
/// (`curl`, `grpcio`) and backends that count what reached them.
@Suite struct AccessTests {
    /// `Service` documents for `names` (a policy may name only declared services).
    static func declare(_ names: [String], protocol proto: String = "http") -> String {
        names.map {
            "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: \($0)}\nspec: {protocol: \(proto)}\n---\n"
        }.joined()
    }

    static let ordersService = declare(["orders"])

    static func authorization(mode: String = "enforce") -> String {
        declare(["orders", "frontend"]) + """
            apiVersion: meshwork.dev/v1
            kind: AuthorizationPolicy
            metadata: {name: orders}
            spec:
              service: orders
              mode: \(mode)
              default: deny
              rules:
                - from: [frontend]
                  to:
                    - methods: [GET]
                      paths: ["/orders/*"]

            """
    }

    /// The status line and `x-mesh-error` of one curl -i answer.
    static func answer(_ output: String) -> (Int, String) {
        let status = output.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        let error =
            output.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-mesh-error:") }
            .map { String($0.dropFirst("x-mesh-error:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
        return (status, error)
    }

    @Test func aCallerIsAllowedOnItsRoutesAndNothingElseReachesTheApp() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let orders = try mesh.backend("orders-1")
        let frontend = try mesh.sidecar("frontend", app: 1)
        let billing = try mesh.sidecar("billing", app: 1)
        try mesh.apply(Self.authorization(), waitFor: [orders.sidecar], running: "AuthorizationPolicy/orders")
        func call(_ caller: Mesh.Sidecar, _ path: String, _ extra: [String] = []) throws -> (Int, String) {
            Self.answer(try mesh.curl(via: caller.outbound, "http://orders\(path)", extra).output)
        }
        #expect(try call(frontend, "/orders/7") == (200, ""))
        #expect(try call(frontend, "/orders", ["-X", "POST", "-d", "x"]) == (403, "authz_denied"))
        #expect(try call(frontend, "/admin") == (403, "authz_denied"))
        #expect(try call(billing, "/orders/7") == (403, "authz_denied"), "an identity no rule lists")
        // Other spellings of a refused route are judged as what they are (--path-as-is: curl sends them raw).
        for bypass in ["//admin", "/orders/../admin", "/orders/%2e%2e/admin"] {
            #expect(try call(frontend, bypass, ["--path-as-is"]) == (403, "authz_denied"), "\(bypass)")
        }
        #expect(try call(frontend, "/orders/%2Fadmin", ["--path-as-is"]) == (400, "malformed_request"))
        #expect(try call(frontend, "/orders//7/./", ["--path-as-is"]) == (200, ""), "served as /orders/7/")
        let paths = try orders.stats()["by_path"] as? [String: Int] ?? [:]
        #expect(paths == ["/orders/7": 1, "/orders/7/": 1], "the app saw only allowed, canonical paths: \(paths)")
        let deny = #"mesh_authz_decisions_total{decision="deny",mode="enforce"}"#
        #expect(try mesh.metric(orders.sidecar, deny) == 7)
        #expect(try mesh.metric(orders.sidecar, #"mesh_authz_decisions_total{decision="allow",mode="enforce"}"#) == 2)

        // Audit mode: everything goes through; what would have been refused is counted and logged.
        try mesh.apply(
            Self.authorization(mode: "audit"), waitFor: [orders.sidecar], running: "AuthorizationPolicy/orders")
        #expect(try call(billing, "/orders/7") == (200, ""))
        #expect(try call(frontend, "/admin") == (200, ""))
        #expect(try orders.requests() == 4)
        #expect(try mesh.metric(orders.sidecar, #"mesh_authz_decisions_total{decision="deny",mode="audit"}"#) == 2)
        #expect(mesh.p.text(orders.sidecar.log).contains("authorization (audit mode) would deny"))
    }

    @Test func aTCPServiceRefusesAnUnlistedCallerAtTheHandshake() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let echoApp = try mesh.p.startPython("\(MeshProcesses.fixtures)/tcp_echo.py", log: "echo-app.log")
        let echo = try mesh.sidecar("echo", app: echoApp, extra: ["--protocol", "tcp"])
        let frontend = try mesh.sidecar("frontend", app: 1, extra: ["--upstream", "echo=127.0.0.1:0"])
        let billing = try mesh.sidecar("billing", app: 1, extra: ["--upstream", "echo=127.0.0.1:0"])
        try mesh.apply(
            Self.declare(["frontend"]) + Self.declare(["echo"], protocol: "tcp")
                + """
                apiVersion: meshwork.dev/v1
                kind: AuthorizationPolicy
                metadata: {name: echo}
                spec:
                  service: echo
                  rules:
                    - from: [frontend]

                """, waitFor: [echo], running: "AuthorizationPolicy/echo")
        let client = """
            import socket, sys
            host, port = sys.argv[1].rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"hello")
            try:
                print("got", s.recv(100))
            except OSError as e:
                print("error", type(e).__name__)
            """
        func echoThrough(_ caller: Mesh.Sidecar) throws -> String {
            let bind = try mesh.p.field(caller.log, "upstream_echo")
            return try mesh.p.run("/usr/bin/python3", ["-c", client, bind], timeout: 30).output
        }
        #expect(try echoThrough(frontend).contains("got b'hello'"))
        let refused = try echoThrough(billing)
        #expect(!refused.contains("hello"), "closed after the handshake, before the app: \(refused)")
        #expect(try mesh.metric(echo, #"mesh_authz_decisions_total{decision="deny",mode="enforce"}"#) == 1)
        #expect(try mesh.metric(echo, #"mesh_proxy_errors_total{direction="inbound",cause="authz_denied"}"#) == 1)
        #expect(mesh.p.text(echo.log).contains("TCP connection closed after the handshake"))
    }

    /// A burst over one identity's limit is answered 429 with `retry-after`, the caller's sidecar does not retry
    /// it, and another identity is unaffected; gRPC callers get RESOURCE_EXHAUSTED and PERMISSION_DENIED.
    @Test func aBurstOverTheRateLimitIs429WhileAnotherIdentityIsUnaffected() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let orders = try mesh.backend("orders-1")
        let frontend = try mesh.sidecar("frontend", app: 1)
        let billing = try mesh.sidecar("billing", app: 1)
        try mesh.apply(
            Self.ordersService + """
                apiVersion: meshwork.dev/v1
                kind: TrafficPolicy
                metadata: {name: orders}
                spec:
                  service: orders
                  rateLimit:
                    perIdentity: {requestsPerSecond: 1, burst: 5}

                """, waitFor: [orders.sidecar], running: "TrafficPolicy/orders")
        // 30 at once: the burst of 5 passes (one more if the burst took over a second on a busy machine).
        let burst = try mesh.paced("http://orders/x", via: frontend.outbound, count: 30, rate: 1000, concurrency: 1)
        let passed = burst.statuses()["200", default: 0]
        let limited = burst.statuses()["429", default: 0]
        #expect((5...6).contains(passed) && passed + limited == 30, "\(burst)")
        #expect(burst.errors() == ["rate_limited": limited], "\(burst)")
        var headers = ""
        for _ in 0..<5 {
            headers = try mesh.curl(via: frontend.outbound, "http://orders/x").output.lowercased()
            if headers.hasPrefix("http/1.1 429") { break }
        }
        #expect(headers.hasPrefix("http/1.1 429") && headers.contains("retry-after: 1"), "\(headers)")
        let other = try mesh.paced("http://orders/x", via: billing.outbound, count: 5, rate: 400, concurrency: 1)
        #expect(other.statuses() == ["200": 5], "another identity has its own limit: \(other)")
        // The app saw what passed; the 429s were not retried by the caller's sidecar.
        let served = try orders.requests()
        let refused = try mesh.metric(orders.sidecar, #"mesh_rate_limited_total{limit="identity"}"#)
        let inbound = try mesh.metric(
            orders.sidecar, #"mesh_http_requests_total{direction="inbound",status_class="4xx"}"#)
        #expect(refused == inbound && refused >= Double(limited + 1), "\(refused) \(inbound)")
        #expect(served >= passed + 5 && served <= passed + 5 + 5, "\(served)")
        #expect(try mesh.metric(frontend, #"mesh_retries_total{direction="outbound"}"#) == 0)
    }

    /// A sidecar that ran an AuthorizationPolicy and restarts with its policy file unreadable while the control
    /// plane is unreachable refuses inbound requests (503 `policy_unavailable`, not ready) until a policy arrives.
    @Test func withoutItsPolicyASidecarThatAuthorizedFailsClosed() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        // A fixed inbound port: the restarted sidecar is found where discovery last saw it.
        let orders = try mesh.backend(
            "orders-1", extra: ["--inbound", "127.0.0.1:\(try MeshProcesses.freePort())"])
        let frontend = try mesh.sidecar("frontend", app: 1)
        try mesh.apply(Self.authorization(), waitFor: [orders.sidecar], running: "AuthorizationPolicy/orders")
        #expect(Self.answer(try mesh.curl(via: frontend.outbound, "http://orders/orders/1").output).0 == 200)

        // The control plane stops answering (SIGSTOP: connections stay open, nothing comes back), the policy
        // file is damaged, the sidecar restarts.
        kill(mesh.controlProcess.processIdentifier, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(mesh.controlProcess.processIdentifier, SIGCONT) } }
        try "{damaged".write(toFile: orders.sidecar.dataDir + "/policy.json", atomically: true, encoding: .utf8)
        let restarted = try mesh.restart(orders.sidecar)
        let (status, cause) = Self.answer(try mesh.curl(via: frontend.outbound, "http://orders/orders/1").output)
        #expect(status == 503 && cause == "policy_unavailable", "\(status) \(cause)")
        let ready = try mesh.p.run("/usr/bin/curl", ["-s", "-i", "--max-time", "5", "http://\(restarted.admin)/ready"])
        #expect(
            ready.output.hasPrefix("HTTP/1.1 503") && ready.output.contains("policy unavailable"), "\(ready.output)")
        #expect(try mesh.metric(restarted, "mesh_policy_unavailable") == 1)
        #expect(try orders.requests() == 1, "nothing reached the app")

        // The control plane is back: the policy arrives and requests flow again.
        kill(mesh.controlProcess.processIdentifier, SIGCONT)
        resumed = true
        let deadline = Date().addingTimeInterval(30)
        var last = (0, "")
        while Date() < deadline {
            last = Self.answer(try mesh.curl(via: frontend.outbound, "http://orders/orders/1").output)
            if last.0 == 200 { break }
            usleep(200_000)
        }
        #expect(last == (200, ""), "\(last)")
        #expect(try mesh.metric(restarted, "mesh_policy_unavailable") == 0)
    }

    @Test func grpcCallersGetPermissionDeniedAndResourceExhausted() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let echoApp = try mesh.p.startPython("\(MeshProcesses.fixtures)/grpc_echo.py", log: "grpc-app.log")
        let echo = try mesh.sidecar("echo", app: echoApp, extra: ["--protocol", "http2"])
        let (_, binds) = try mesh.caller(binding: ["echo"])
        try mesh.apply(
            Self.declare(["caller"]) + Self.declare(["echo"], protocol: "grpc")
                + """
                apiVersion: meshwork.dev/v1
                kind: TrafficPolicy
                metadata: {name: echo}
                spec:
                  service: echo
                  rateLimit: {perIdentity: {requestsPerSecond: 1, burst: 2}}
                ---
                apiVersion: meshwork.dev/v1
                kind: AuthorizationPolicy
                metadata: {name: echo}
                spec:
                  service: echo
                  rules:
                    - from: [caller]
                      to: [{paths: ["/echo.Echo/Unary"]}]

                """, waitFor: [echo], running: "AuthorizationPolicy/echo")
        let client = """
            import grpc, sys
            channel = grpc.insecure_channel(sys.argv[1])
            for method in ["/echo.Echo/Unary"] * 6 + ["/echo.Echo/Other"]:
                try:
                    channel.unary_unary(method)(b"x", timeout=10)
                    print(method, "OK")
                except grpc.RpcError as e:
                    print(method, e.code(), e.details())
            """
        let r = try mesh.p.run("/usr/bin/python3", ["-c", client, binds["echo"]!], timeout: 30)
        let lines = r.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 7, "\(r.output)")
        #expect(lines.prefix(2).allSatisfy { $0.hasSuffix("OK") }, "\(r.output)")
        // Six calls in far less than the four seconds the limit would need to let them all through.
        #expect(
            lines.dropFirst(2).prefix(4).contains {
                $0.contains("StatusCode.RESOURCE_EXHAUSTED meshwork: rate_limited")
            },
            "\(r.output)")
        #expect(lines.last?.contains("StatusCode.PERMISSION_DENIED meshwork: authz_denied") == true, "\(r.output)")
    }
}
