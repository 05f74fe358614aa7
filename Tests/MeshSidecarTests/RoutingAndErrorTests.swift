import Foundation
import MeshCore
import NIOHTTP1
import Testing

@testable import MeshSidecar

@Suite struct OutboundRoutingTests {
    func head(_ uri: String, host: String? = nil, method: HTTPMethod = .GET) -> HTTPRequestHead {
        var h = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        if let host { h.headers.add(name: "host", value: host) }
        return h
    }

    @Test func theAuthorityNamesTheService() throws {
        let (a1, p1) = try LogicalTarget.split(head("http://orders/api/v1?x=1"))
        #expect(a1 == "orders" && p1 == "/api/v1?x=1")
        let (a2, p2) = try LogicalTarget.split(head("http://orders:8080"))
        #expect(a2 == "orders:8080" && p2 == "/")
        #expect(try LogicalTarget.service(from: "orders:8080").value == "orders")
        let (a3, p3) = try LogicalTarget.split(head("/x", host: "Orders"))
        #expect(a3 == "Orders" && p3 == "/x")
        #expect(try LogicalTarget.service(from: "Orders").value == "orders")
    }

    @Test func unusableTargetsAreSpecificErrors() {
        #expect(throws: ProxyError.self) { try LogicalTarget.split(head("orders:443", method: .CONNECT)) }
        #expect(throws: ProxyError.self) { try LogicalTarget.split(head("https://orders/")) }
        #expect(throws: ProxyError.self) { try LogicalTarget.service(from: nil) }
        #expect(throws: ProxyError.self) { try LogicalTarget.service(from: "bad_name") }
    }
}

@Suite struct ProxyErrorResponseTests {
    @Test func eachCauseHasAFittingStatusAndHeader() {
        let cases: [(ProxyError.Cause, UInt)] = [
            (.noEndpoints, 503), (.unknownService, 503), (.connectFailed, 502), (.tlsPeerIdentityMismatch, 502),
            (.upstreamReset, 502), (.invalidAuthority, 400), (.timeout, 504), (.retriesExhausted, 503),
            (.retryBudgetExhausted, 503), (.circuitOpen, 503),
        ]
        for (cause, status) in cases {
            let response = ProxyErrorResponse.make(
                ProxyError(cause, "d"), requestHeaders: [:], version: .http1_1, close: false)
            let (head, body) = (response.head, response.body)
            #expect(response.trailers == nil)
            #expect(head.status.code == status)
            #expect(head.headers.first(name: "x-mesh-error") == cause.rawValue)
            #expect(head.headers.first(name: "content-length") == String(body.utf8.count))
            #expect(head.headers.first(name: "grpc-status") == nil)
        }
    }

    @Test func grpcCallersGetAGrpcStatusInTrailers() {
        let response = ProxyErrorResponse.make(
            ProxyError(.noEndpoints, "service \"orders\" has no endpoints: 100%"),
            requestHeaders: ["content-type": "application/grpc+proto"], version: .http1_1, close: true)
        #expect(response.head.status == .ok, "gRPC carries the failure in grpc-status, not the HTTP status")
        #expect(response.head.headers.first(name: "content-type") == "application/grpc")
        #expect(response.head.headers.first(name: "x-mesh-error") == "no_endpoints")
        #expect(response.head.headers.first(name: "connection") == "close")
        #expect(response.body.isEmpty)
        #expect(response.trailers?.first(name: "grpc-status") == "14")
        #expect(
            response.trailers?.first(name: "grpc-message")
                == "meshwork: no_endpoints: service \"orders\" has no endpoints: 100%25")
    }

    @Test func aGrpcTrailersOnlyStatusMovesToTheTrailers() {
        var head: HTTPHeaders = [
            "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "no such order",
        ]
        let moved = GRPCTrailersOnly.split(&head)
        #expect(head.map(\.name) == ["content-type"])
        #expect(moved?.first(name: "grpc-status") == "5")
        let trailers = GRPCTrailersOnly.merge(moved, into: nil)
        #expect(trailers?.first(name: "grpc-message") == "no such order")
        var plain: HTTPHeaders = ["content-type": "text/plain", "grpc-status": "5"]
        #expect(GRPCTrailersOnly.split(&plain) == nil, "only gRPC responses are rewritten")
        var normal: HTTPHeaders = ["content-type": "application/grpc"]
        #expect(GRPCTrailersOnly.split(&normal) == nil, "a head without a status is an ordinary gRPC head")
    }

    @Test func hopByHopHeadersAreNotForwarded() {
        var headers: HTTPHeaders = [
            "connection": "keep-alive, x-secret", "x-secret": "1", "proxy-authorization": "p", "te": "trailers",
            "x-app": "ok",
        ]
        HopByHopHeaders.strip(&headers)
        #expect(
            headers.map(\.name) == ["x-app", "te"], "TE: trailers is the one TE value that travels (gRPC needs it)")
        var gzip: HTTPHeaders = ["te": "gzip", "x-app": "ok"]
        HopByHopHeaders.strip(&gzip)
        #expect(gzip.map(\.name) == ["x-app"])
    }
}

@Suite struct SidecarConfigurationTests {
    let required = [
        "--service", "orders", "--control", "127.0.0.1:7443", "--token-file", "/t", "--app", "127.0.0.1:8080",
        "--data-dir", "/d",
    ]

    @Test func defaultsFollowTheContract() throws {
        let c = try SidecarConfiguration(arguments: required, environment: [:])
        #expect(c.inbound == HostPort(host: "0.0.0.0", port: 15006))
        #expect(c.outbound == HostPort(host: "127.0.0.1", port: 15001))
        #expect(c.admin == HostPort(host: "127.0.0.1", port: 15000))
        #expect(c.trustDomain == .default)
        #expect(c.upstreams.isEmpty)
        #expect(c.healthCheck == .tcp, "an app that does not accept connections is not served")
        #expect(c.listenerLimits == .sidecar)
        #expect(c.listenerLimits.maxConnections == 4096 && c.listenerLimits.idleTimeout == .seconds(3600))
    }

    @Test func frontDoorLimitsFromFlagsAndTwins() throws {
        let c = try SidecarConfiguration(
            arguments: required + ["--max-connections", "100", "--idle-timeout", "90s"],
            environment: ["MESH_HANDSHAKE_TIMEOUT": "2s"])
        #expect(c.listenerLimits.maxConnections == 100 && c.listenerLimits.idleTimeout == .seconds(90))
        #expect(c.listenerLimits.handshakeTimeout == .seconds(2))
        #expect(throws: MeshError.self) {
            try SidecarConfiguration(arguments: required + ["--max-connections", "-1"], environment: [:])
        }
    }

    @Test func healthChecks() throws {
        for (flag, expected) in [
            ("none", AppHealthCheck.none), ("tcp", .tcp), ("http:/healthz", .http(path: "/healthz")),
        ] {
            #expect(
                try SidecarConfiguration(arguments: required + ["--health-check", flag], environment: [:]).healthCheck
                    == expected)
        }
        #expect(
            try SidecarConfiguration(arguments: required, environment: ["MESH_HEALTH_CHECK": "http:/ready"]).healthCheck
                == .http(path: "/ready"))
        do {
            _ = try SidecarConfiguration(arguments: required + ["--health-check", "http"], environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(error.message == "--health-check=\"http\": must be none, tcp or http:/PATH (e.g. http:/healthz)")
        }
    }

    @Test func environmentTwinsAndUpstreams() throws {
        let c = try SidecarConfiguration(
            arguments: required + ["--upstream", "billing=127.0.0.1:9191"],
            environment: ["MESH_ADMIN": "127.0.0.1:9000", "MESH_SERVICE": "ignored-because-flag-wins"])
        #expect(c.admin.port == 9000)
        #expect(c.service.value == "orders")
        #expect(
            c.upstreams.count == 1 && c.upstreams[0].service.value == "billing" && c.upstreams[0].listen.port == 9191)
    }

    @Test func theDeployEnvExampleIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("deploy/env/sidecar.env.example").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
            let eq = line.firstIndex(of: "=")!
            env[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        #expect(env.keys.allSatisfy { $0.hasPrefix("MESH_") })
        let c = try SidecarConfiguration(arguments: [], environment: env)
        #expect(c.service.value == "orders")
    }

    @Test func standaloneModeTakesIdentityFilesAndStaticEndpoints() throws {
        let c = try SidecarConfiguration(
            arguments: [
                "--service", "orders", "--app", "127.0.0.1:8080", "--cert", "/c.pem", "--key", "/k.pem", "--bundle",
                "/b.pem",
                "--endpoint", "billing=10.0.0.1:15006", "--endpoint", "billing=10.0.0.2:15006",
            ], environment: [:])
        guard case .standalone(let paths, let endpoints) = c.mode else {
            Issue.record("not standalone")
            return
        }
        #expect(paths == IdentityFilePaths(cert: "/c.pem", key: "/k.pem", bundle: "/b.pem"))
        #expect(endpoints[try ServiceName("billing")]?.count == 2)
    }

    @Test func theTwoModesDoNotMix() {
        let standalone = [
            "--service", "orders", "--app", "127.0.0.1:8080", "--cert", "/c", "--key", "/k", "--bundle", "/b",
        ]
        for (args, expected) in [
            (standalone + ["--control", "127.0.0.1:7443"], "--control cannot be combined with --cert"),
            (Array(standalone.dropLast(2)), "--bundle is required"),
            (required + ["--endpoint", "a=127.0.0.1:1"], "--endpoint is for standalone mode"),
            (["--service", "orders", "--app", "127.0.0.1:8080"], "--control is required"),
        ] {
            do {
                _ = try SidecarConfiguration(arguments: args, environment: [:])
                Issue.record("\(args) accepted")
            } catch {
                #expect(error.message.hasPrefix(expected), "\(error.message)")
            }
        }
    }

    /// Standalone mode reads its policy from a file, validated like `meshctl validate` before any socket opens.
    @Test func standalonePolicyComesFromAFileValidatedAtStart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let standalone = [
            "--service", "frontend", "--app", "127.0.0.1:8080", "--cert", "/c", "--key", "/k", "--bundle", "/b",
        ]
        let good = "\(dir)/good.yaml"
        try
            "apiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: orders}\nspec: {service: orders, retries: {attempts: 1}}\n"
            .write(toFile: good, atomically: true, encoding: .utf8)
        let c = try SidecarConfiguration(arguments: standalone + ["--policy", good], environment: [:])
        #expect(c.policy.count == 1)
        let bad = "\(dir)/bad.yaml"
        try
            "apiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: orders}\nspec: {service: orders, retries: {attempts: 11}}\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        do {
            _ = try SidecarConfiguration(arguments: standalone + ["--policy", bad], environment: [:])
            Issue.record("a bad policy file accepted")
        } catch {
            #expect(error.message.contains("bad.yaml:4:"), "\(error.message)")
            #expect(error.message.contains("spec.retries.attempts: must be an integer in 0...10 (got 11)"))
        }
        do {
            _ = try SidecarConfiguration(arguments: required + ["--policy", good], environment: [:])
            Issue.record("--policy accepted with a control plane")
        } catch {
            #expect(error.message.hasPrefix("--policy is for standalone mode"), "\(error.message)")
        }
    }

    @Test func advertiseMustBeDialable() {
        #expect(throws: MeshError.self) {
            try SidecarConfiguration(arguments: required + ["--advertise", "0.0.0.0:15006"], environment: [:])
        }
    }
}
