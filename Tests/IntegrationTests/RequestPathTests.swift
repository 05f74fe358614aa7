import Foundation
import Testing

/// Bad and unusual request shapes a careless or hostile caller sends through the outbound side: pipelined
/// requests, a duplicate Host, heads near the size limit next to other traffic to the same service.
@Suite(.serialized)
struct RequestPathTests {
    struct Response: Decodable {
        let status: Int?
        let headers: [String: String]?
        let body: String?
        let truncated_body: Int?
        let truncated_head: String?
    }

    /// Sends `request` in one write to `address` and returns the responses read back, in order.
    func raw(_ mesh: Mesh, _ address: String, _ request: String) throws -> [Response] {
        let (host, port) = (address.split(separator: ":")[0], address.split(separator: ":")[1])
        let hex = Data(request.utf8).map { String(format: "%02x", $0) }.joined()
        let out = try mesh.p.run(
            "/usr/bin/python3", ["\(MeshProcesses.fixtures)/raw_http.py", String(host), String(port), hex]
        ).output
        return try out.split(separator: "\n").map { try JSONDecoder().decode(Response.self, from: Data($0.utf8)) }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderAlsoWhenTheSidecarAnswers() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let port = try mesh.p.startPython("\(MeshProcesses.fixtures)/http11_app.py", log: "app.log")
        _ = try mesh.sidecar("orders", app: port)
        let frontend = try mesh.sidecar("frontend", app: 1)
        // Warm the destination up, so the pipelined requests do not race discovery's first answer.
        _ = try mesh.curl(via: frontend.outbound, "http://orders/sized")

        let get = "GET http://orders/sized HTTP/1.1\r\nHost: orders\r\n\r\n"
        let three = try raw(mesh, frontend.outbound, get + get + get)
        #expect(three.count == 3, "\(three)")
        #expect(three.allSatisfy { $0.status == 200 && $0.body == "hello" }, "\(three)")

        // The sidecar's own answers (an unknown service) interleaved with forwarded ones keep their order too.
        let unknown = "GET http://nosuch/x HTTP/1.1\r\nHost: nosuch\r\n\r\n"
        let mixed = try raw(
            mesh, frontend.outbound,
            get + unknown + get + "GET http://orders/sized HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n")
        #expect(mixed.map(\.status) == [200, 503, 200, 200], "\(mixed)")
        #expect(mixed[1].headers?["x-mesh-error"] == "unknown_service")
        #expect(mixed.allSatisfy { $0.truncated_body == nil && $0.truncated_head == nil })
    }

    @Test func aDuplicateHostIsA400AtTheCallersSidecar() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let port = try mesh.p.startPython("\(MeshProcesses.fixtures)/http11_app.py", log: "app.log")
        _ = try mesh.sidecar("orders", app: port)
        let (_, binds) = try mesh.caller(binding: ["orders"])
        let responses = try raw(
            mesh, binds["orders"]!,
            "GET /sized HTTP/1.1\r\nHost: orders\r\nHost: payments\r\n\r\nGET /sized HTTP/1.1\r\nHost: orders\r\n\r\n")
        #expect(responses.first?.status == 400, "\(responses)")
        #expect(responses.first?.headers?["x-mesh-error"] == "malformed_request")
        #expect(responses.count == 2 && responses[1].status == 200, "the connection goes on: \(responses)")
    }

    /// A head inside the limits passes end to end, one over them is refused alone (431), and neither disturbs
    /// the other requests to the same service — over HTTP/1.1 and over h2c from the app.
    @Test func aLargeHeadPassesOrIsRefusedAloneAndOthersCarryOn() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let port = try mesh.p.startPython("\(MeshProcesses.fixtures)/http11_app.py", log: "app.log")
        _ = try mesh.sidecar("orders", app: port)
        let (_, binds) = try mesh.caller(binding: ["orders"])
        let bind = binds["orders"]!
        for http2 in [false, true] {
            let proto = http2 ? ["--http2-prior-knowledge"] : []
            // A slow request in flight on the same destination while the big heads go by.
            let slowLog = "\(mesh.p.dir)/slow-\(http2).out"
            let slow = try mesh.p.start(
                "/bin/bash",
                [
                    "-c",
                    "head -c 2000000 /dev/zero | curl -s --max-time 20 \(proto.joined()) --limit-rate 400k -T - -X POST -o /dev/null -w '%{http_code}' http://\(bind)/echo > \(slowLog)",
                ],
                log: "slow-\(http2).log")
            Thread.sleep(forTimeInterval: 0.5)
            func status(_ args: [String]) throws -> String {
                try mesh.p.run(
                    "/usr/bin/curl", ["-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"] + proto + args
                ).output
            }
            var headers: [String] = []
            for i in 0..<90 { headers += ["-H", "x-h\(i): " + String(repeating: "v", count: 600)] }
            if !http2 {
                for size in [20_000, 32_000, 50_000] {
                    let code = try status(["http://\(bind)/sized?" + String(repeating: "q", count: size)])
                    #expect(
                        code == "404", "a URI of \(size) bytes passes end to end (the app has no such page): \(code)")
                }
                #expect(try status(headers + ["http://\(bind)/sized"]) == "200", "90 headers of ~54 KB pass")
                let tooBig = try status(["http://\(bind)/sized?" + String(repeating: "q", count: 70_000)])
                #expect(tooBig == "431", "over the limit: refused alone (\(tooBig))")
            } else {
                // h2c from the app: NIO holds a client's first flight (sent before our SETTINGS are acknowledged)
                // to 16 KiB of headers, so curl's big requests end that caller's own connection — never the shared
                // connection between the sidecars, which the request in flight is using.
                let code = try status(["http://\(bind)/sized?" + String(repeating: "q", count: 12_000)])
                #expect(code == "404", "h2c: a URI of 12,000 bytes passes end to end: \(code)")
                for size in [32_000, 50_000] {
                    _ = try status(["http://\(bind)/sized?" + String(repeating: "q", count: size)])
                }
                _ = try status(headers + ["http://\(bind)/sized"])
            }
            slow.waitUntilExit()
            let code = (try? String(contentsOfFile: slowLog, encoding: .utf8)) ?? ""
            #expect(code == "200", "http2=\(http2): the request in flight was not disturbed (\(code))")
        }
    }
}
