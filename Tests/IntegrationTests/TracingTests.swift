import Foundation
import Testing

/// Trace propagation and span export between real sidecars, to a real OTLP/HTTP receiver
/// (`Fixtures/otlp_receiver.py`, opentelemetry-proto from PyPI, installed by `make deps`).
@Suite(.serialized) struct TracingTests {
    /// The receiver: its port and process, and the spans it has kept.
    struct Receiver {
        let port: Int
        let process: Process
        let mesh: Mesh

        var endpoint: String { "http://127.0.0.1:\(port)" }

        func spans() throws -> [[String: Any]] {
            let r = try mesh.p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)/_spans"])
            let object = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
            return object?["spans"] as? [[String: Any]] ?? []
        }

        /// The spans of `trace`, once `count` of them have arrived (batches go out every second).
        func spans(of trace: String, count: Int, within seconds: Double = 15) throws -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(seconds)
            var found: [[String: Any]] = []
            while Date() < deadline {
                found = try spans().filter { $0["trace_id"] as? String == trace }
                if found.count >= count { return found }
                usleep(200_000)
            }
            throw TestFailure("\(found.count) of \(count) spans of trace \(trace) arrived: \(found)")
        }

        func mode(_ json: String) throws {
            _ = try mesh.p.run(
                "/usr/bin/curl", ["-s", "--max-time", "5", "-X", "POST", "-d", json, "http://127.0.0.1:\(port)/_mode"])
        }
    }

    static func receiver(_ mesh: Mesh) throws -> Receiver {
        let (port, process) = try mesh.p.startPythonServer(
            "\(MeshProcesses.fixtures)/otlp_receiver.py", log: "otlp.log",
            env: ["PYTHONPATH": "\(MeshProcesses.packageRoot)/.build/python"])
        return Receiver(port: port, process: process, mesh: mesh)
    }

    /// The `traceparent` the backend's app last received.
    static func lastTraceparent(_ backend: Backend) throws -> String? {
        let headers = try backend.stats()["headers"] as? [[String: String]] ?? []
        return headers.last?["traceparent"]
    }

    static func field(_ traceparent: String?, _ index: Int) -> String? {
        traceparent.map { $0.split(separator: "-").map(String.init) }.flatMap { $0.count == 4 ? $0[index] : nil }
    }

    @Test func aRequestThroughTwoSidecarsIsOneTraceOfClientAttemptAndServerSpans() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let receiver = try Self.receiver(mesh)
        let tracing = ["--otlp-endpoint", receiver.endpoint, "--trace-sampling", "0"]
        let orders = try mesh.backend("b1", extra: tracing)
        let (caller, binds) = try mesh.caller(binding: ["orders"], extra: tracing + ["--access-log", "on"])
        let url = "http://\(binds["orders"]!)/orders"
        func get(_ headers: [String]) throws -> String {
            try mesh.p.run("/usr/bin/curl", ["-s", "-i", "--max-time", "10", url] + headers.flatMap { ["-H", $0] })
                .output
        }

        // W3C: the caller's traceparent (sampled) is the root's parent.
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let parent = "00f067aa0ba902b7"
        let answer = try get(["traceparent: 00-\(trace)-\(parent)-01", "tracestate: vendor=abc"])
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        let spans = try receiver.spans(of: trace, count: 3)
        let client = spans.first { $0["kind"] as? Int == 3 && ($0["name"] as? String)?.hasPrefix("attempt") == false }
        let attempt = spans.first { ($0["name"] as? String)?.hasPrefix("attempt") == true }
        let server = spans.first { $0["kind"] as? Int == 2 }
        #expect(client?["parent_span_id"] as? String == parent, "\(spans)")
        #expect(client?["service"] as? String == "caller")
        #expect(attempt?["parent_span_id"] as? String == client?["span_id"] as? String, "\(spans)")
        #expect(server?["parent_span_id"] as? String == attempt?["span_id"] as? String, "\(spans)")
        #expect(server?["service"] as? String == "orders")
        let clientAttributes = client?["attributes"] as? [String: Any] ?? [:]
        #expect(clientAttributes["mesh.peer.service"] as? String == "orders", "\(clientAttributes)")
        #expect(clientAttributes["mesh.peer.identity"] as? String == "spiffe://mesh.local/svc/orders")
        #expect(clientAttributes["http.response.status_code"] as? Int == 200)
        #expect(clientAttributes["mesh.attempts"] as? Int == 1)
        let serverAttributes = server?["attributes"] as? [String: Any] ?? [:]
        #expect(serverAttributes["mesh.peer.identity"] as? String == "spiffe://mesh.local/svc/caller")
        #expect(serverAttributes["mesh.peer.service"] as? String == "caller")
        // The app sees the same trace, its parent the server span, and the caller's tracestate.
        let seen = try #require(try Self.lastTraceparent(orders))
        #expect(Self.field(seen, 1) == trace)
        #expect(Self.field(seen, 2) == server?["span_id"] as? String, "\(seen)")
        #expect(Self.field(seen, 3) == "01")
        let headers = try orders.stats()["headers"] as? [[String: String]] ?? []
        #expect(headers.last?["tracestate"] == "vendor=abc")

        // B3, multi-header (a 64-bit trace ID), continued as W3C; the B3 headers do not go on.
        let b3Trace = "a3ce929d0e0e4736"
        _ = try get(["X-B3-TraceId: \(b3Trace)", "X-B3-SpanId: 00f067aa0ba902b7", "X-B3-Sampled: 1"])
        let b3Spans = try receiver.spans(of: "0000000000000000" + b3Trace, count: 3)
        #expect(b3Spans.contains { $0["parent_span_id"] as? String == "00f067aa0ba902b7" }, "\(b3Spans)")
        let afterB3 = try orders.stats()["headers"] as? [[String: String]] ?? []
        #expect(Self.field(afterB3.last?["traceparent"], 1) == "0000000000000000" + b3Trace)
        #expect(afterB3.last?.keys.contains { $0.hasPrefix("x-b3-") } == false, "\(afterB3.last ?? [:])")
        // B3 single header.
        let single = "80f198ee56343ba864fe8b2a57d3eff7"
        _ = try get(["b3: \(single)-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"])
        _ = try receiver.spans(of: single, count: 3)
        #expect(Self.field(try Self.lastTraceparent(orders), 1) == single)

        // Malformed traceparents start a new trace, are counted, and never go on (nor come back).
        let malformed = [
            "00-\(trace)-\(parent)",  // wrong length
            "00-\(String(repeating: "g", count: 32))-\(parent)-01",  // not hex
            "ff-\(trace)-\(parent)-01",  // version ff
        ]
        for bad in malformed {
            let answer = try get(["traceparent: \(bad)"])
            #expect(answer.hasPrefix("HTTP/1.1 200"))
            #expect(!answer.contains(bad), "echoed: \(answer)")
            let seen = try #require(try Self.lastTraceparent(orders))
            #expect(seen != bad && Self.field(seen, 1) != trace, "\(seen)")
            #expect(Self.field(seen, 3) == "00", "a new trace is sampled at --trace-sampling (0 here): \(seen)")
        }
        #expect(try mesh.metric(caller, #"mesh_trace_context_malformed_total{format="w3c"}"#) == 3)

        // Without any trace context, at 0 % sampling: a new unsampled trace reaches the app, and no span is made.
        let before = try receiver.spans().count
        _ = try get([])
        let fresh = try #require(try Self.lastTraceparent(orders))
        #expect(Self.field(fresh, 3) == "00" && Self.field(fresh, 1)?.count == 32, "\(fresh)")
        usleep(2_500_000)
        #expect(try receiver.spans().count == before)

        // The access log line names the trace, the peer and the outcome.
        let log = mesh.p.text(caller.log)
        let line = log.split(separator: "\n").first { $0.contains("\"type\":\"access\"") && $0.contains(trace) }
        let object = line.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(object?["peer_service"] as? String == "orders", "\(line ?? "no access line")")
        #expect(object?["status"] as? Int == 200)
        #expect(object?["direction"] as? String == "outbound")
        #expect(object?["span_id"] as? String == client?["span_id"] as? String)
        #expect(object?["duration_ms"] != nil && object?["response_bytes"] != nil)

        // A retried request: one attempt span per try under the one client span, the failed try marked.
        try mesh.applyTrafficPolicy(
            "orders", "retries: {attempts: 2, retryOn: [\"503\"], backoff: {base: 5ms}}", callers: [caller])
        try orders.set(#"{"statuses": [503, 200]}"#)
        let retried = "7bf92f3577b34da6a3ce929d0e0e4736"
        #expect(try get(["traceparent: 00-\(retried)-\(parent)-01"]).hasPrefix("HTTP/1.1 200"))
        let retrySpans = try receiver.spans(of: retried, count: 5)  // client, two attempts, two server spans
        func attributes(_ span: [String: Any]?) -> [String: Any] { span?["attributes"] as? [String: Any] ?? [:] }
        let tries = retrySpans.filter { ($0["name"] as? String)?.hasPrefix("attempt") == true }
        let retryClient = retrySpans.first { $0["parent_span_id"] as? String == parent }
        #expect(tries.count == 2, "\(retrySpans)")
        #expect(tries.allSatisfy { $0["parent_span_id"] as? String == retryClient?["span_id"] as? String })
        let first = tries.first { attributes($0)["mesh.attempt"] as? Int == 1 }
        let second = tries.first { attributes($0)["mesh.attempt"] as? Int == 2 }
        #expect(attributes(first)["mesh.attempt.result"] as? String == "failed", "\(tries)")
        #expect(attributes(second)["mesh.attempt.result"] as? String == "succeeded")
        #expect(
            attributes(retryClient)["mesh.attempts"] as? Int == 2
                && attributes(retryClient)["mesh.retries"] as? Int == 1)
        let servers = retrySpans.filter { $0["kind"] as? Int == 2 }
        #expect(
            Set(servers.compactMap { $0["parent_span_id"] as? String })
                == Set(tries.compactMap { $0["span_id"] as? String }))
    }

    /// Over 30 s each of a collector answering 500 and of no collector at all, at 100 % sampling and 100
    /// requests a second: spans are dropped and counted, the sidecar's memory stays bounded, latency is as before.
    @Test func aFailingOrAbsentCollectorCostsDroppedSpansNotMemoryOrLatency() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let receiver = try Self.receiver(mesh)
        let tracing = ["--otlp-endpoint", receiver.endpoint, "--trace-sampling", "100%"]
        _ = try mesh.backend("b1", extra: tracing)
        let (caller, binds) = try mesh.caller(binding: ["orders"], extra: tracing + ["--access-log", "on"])
        let url = "http://\(binds["orders"]!)/orders"
        func load(_ count: Int) throws -> PacedReport {
            let r = try mesh.p.run(
                "/usr/bin/python3",
                ["\(MeshProcesses.fixtures)/paced_client.py", "--url", url, "--count", "\(count)", "--rate", "100"],
                timeout: Double(count) / 100 + 30)
            let line = r.output.split(separator: "\n").last.map(String.init) ?? ""
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            return PacedReport(raw: object)
        }
        func p50(_ report: PacedReport) -> Double {
            (report.raw["latency_ms"] as? [String: Any])?["p50"] as? Double ?? .infinity
        }
        let baseline = try load(500)
        #expect(baseline.statuses() == ["200": 500], "\(baseline)")
        #expect(try mesh.metric(caller, "mesh_trace_spans_dropped_total") == 0)
        let rssBefore = try Self.residentKiB(caller.process.processIdentifier)

        try receiver.mode(#"{"status": 500}"#)
        let refused = try load(3000)
        #expect(refused.statuses() == ["200": 3000], "\(refused)")
        let rssRefused = try Self.residentKiB(caller.process.processIdentifier)

        // SIGKILL: the test runner's blocked signals are inherited by what it starts, SIGTERM among them.
        kill(receiver.process.processIdentifier, SIGKILL)
        receiver.process.waitUntilExit()
        let absent = try load(3000)
        #expect(absent.statuses() == ["200": 3000], "\(absent)")
        let rssAbsent = try Self.residentKiB(caller.process.processIdentifier)
        usleep(2_000_000)

        let dropped = try mesh.metric(caller, "mesh_trace_spans_dropped_total")
        #expect(dropped >= 3000, "6,000 requests' spans could not be delivered; counted \(dropped)")
        #expect(try mesh.metric(caller, "mesh_trace_exports_failed_total") > 0)
        // Bounded: the exporter's queue (2,048 spans) and the batches in flight, not 12,000 spans' worth.
        #expect(rssRefused - rssBefore < 48 * 1024, "RSS \(rssBefore) → \(rssRefused) KiB while the collector refused")
        #expect(rssAbsent - rssBefore < 48 * 1024, "RSS \(rssBefore) → \(rssAbsent) KiB while it was gone")
        // Latency on the data path as before (generous: two shared cores, a Python client).
        #expect(p50(refused) < p50(baseline) * 3 + 5, "p50 \(p50(baseline)) → \(p50(refused)) ms")
        #expect(p50(absent) < p50(baseline) * 3 + 5, "p50 \(p50(baseline)) → \(p50(absent)) ms")
        #expect(mesh.p.text(caller.log).contains("spans are being lost"))
    }

    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
