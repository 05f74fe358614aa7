import MeshCore
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// Trace context as values: W3C `traceparent` read strictly, B3 (single and multi) converted, what goes on.
struct TraceContextTests {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    let parent = "00f067aa0ba902b7"

    @Test func w3cIsReadAndWrittenBackTheSame() throws {
        let value = "00-\(trace)-\(parent)-01"
        let context = try #require(TraceHeaders.parseTraceparent(value))
        #expect(context.traceparent == value)
        #expect(context.traceIDHex == trace && context.spanIDHex == parent && context.sampled)
        #expect(TraceHeaders.parseTraceparent("00-\(trace)-\(parent)-00")?.sampled == false)
        // A later version may carry more fields after a dash; it is read as version 00.
        #expect(TraceHeaders.parseTraceparent("01-\(trace)-\(parent)-01-extra")?.traceIDHex == trace)
    }

    @Test func malformedTraceparentsAreRefused() {
        let bad = [
            "00-\(trace)-\(parent)",  // too short
            "00-\(trace)-\(parent)-01-x",  // version 00 with more
            "00-\(String(repeating: "g", count: 32))-\(parent)-01",  // not hex
            "00-\(trace.uppercased())-\(parent)-01",  // upper case
            "ff-\(trace)-\(parent)-01",  // version ff
            "00-\(String(repeating: "0", count: 32))-\(parent)-01",  // zero trace
            "00-\(trace)-0000000000000000-01",  // zero parent
            "00_\(trace)-\(parent)-01",  // separator
            "01-\(trace)-\(parent)-01x",  // a later version, but no dash after the flags
            "",
        ]
        for value in bad { #expect(TraceHeaders.parseTraceparent(value) == nil, "\(value)") }
        var headers = HTTPHeaders([("traceparent", bad[0]), ("tracestate", "a=b")])
        #expect(TraceHeaders.extract(headers) == .malformed(.w3c))
        // What goes on replaces it, and drops the tracestate that came with it.
        let fresh = TraceContext.root(sampled: false)
        TraceHeaders.write(fresh, into: &headers)
        #expect(headers["traceparent"] == [fresh.traceparent])
        #expect(!headers.contains(name: "tracestate"))
    }

    @Test func tracestateGoesOnWithItsTrace() {
        let headers = HTTPHeaders([
            ("traceparent", "00-\(trace)-\(parent)-01"), ("tracestate", "a=1"), ("tracestate", "b=2"),
        ])
        guard case .parent(let context, .w3c) = TraceHeaders.extract(headers) else {
            Issue.record("not read")
            return
        }
        #expect(context.traceState == "a=1,b=2")
        var next = headers
        TraceHeaders.write(context.child(), into: &next)
        #expect(next["tracestate"] == ["a=1,b=2"])
        let tooLong = HTTPHeaders([
            ("traceparent", "00-\(trace)-\(parent)-01"), ("tracestate", String(repeating: "a", count: 600)),
        ])
        guard case .parent(let long, _) = TraceHeaders.extract(tooLong) else { return }
        #expect(long.traceState == nil)
    }

    @Test func b3IsConvertedToW3C() throws {
        let single = TraceHeaders.extract(HTTPHeaders([("b3", "\(trace)-\(parent)-1-05e3ac9a4f6e3b90")]))
        #expect(
            single
                == .parent(
                    TraceContext(
                        traceHigh: 0x4bf9_2f35_77b3_4da6, traceLow: 0xa3ce_929d_0e0e_4736,
                        spanID: 0x00f0_67aa_0ba9_02b7,
                        sampled: true), .b3))
        let multi = TraceHeaders.extract(
            HTTPHeaders([("X-B3-TraceId", "A3CE929D0E0E4736"), ("X-B3-SpanId", parent), ("X-B3-Sampled", "0")]))
        guard case .parent(let context, .b3) = multi else {
            Issue.record("\(multi)")
            return
        }
        #expect(context.traceIDHex == "0000000000000000a3ce929d0e0e4736" && !context.sampled)
        #expect(TraceHeaders.extract(HTTPHeaders([("b3", "1")])) == .decision(sampled: true))
        #expect(TraceHeaders.extract(HTTPHeaders([("b3", "0")])) == .decision(sampled: false))
        #expect(TraceHeaders.extract(HTTPHeaders([("x-b3-flags", "1")])) == .decision(sampled: true))
        // Without a sampling flag B3 defers the decision: the IDs are kept, the ratio decides.
        guard case .deferred(let deferred) = TraceHeaders.extract(HTTPHeaders([("b3", "\(trace)-\(parent)")])) else {
            Issue.record("not deferred")
            return
        }
        #expect(deferred.traceIDHex == trace)
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders([("b3", "\(trace)-\(parent)")]))
        #expect(!HopTrace(head, direction: .outbound, name: "x", ratio: 0, export: nil).hop.sampled)
        #expect(HopTrace(head, direction: .outbound, name: "x", ratio: 1, export: nil).hop.traceIDHex == trace)
        for bad in ["\(trace)", "\(trace)-xyz-1", "\(trace)-\(parent)-2", "a-b-c-d-e", "zz"] {
            #expect(TraceHeaders.extract(HTTPHeaders([("b3", bad)])) == .malformed(.b3), "\(bad)")
        }
        #expect(TraceHeaders.extract(HTTPHeaders([("x-b3-traceid", trace)])) == .malformed(.b3))
        // traceparent wins over B3; B3 headers are removed when converted.
        let both = HTTPHeaders([("traceparent", "00-\(trace)-\(parent)-01"), ("b3", "0")])
        guard case .parent(_, .w3c) = TraceHeaders.extract(both) else {
            Issue.record("B3 won")
            return
        }
        var headers = HTTPHeaders([("X-B3-TraceId", trace), ("X-B3-SpanId", parent), ("x-b3-sampled", "1")])
        let incoming = TraceHeaders.extract(headers)
        guard case .parent(let converted, .b3) = incoming else { return }
        TraceHeaders.write(converted, into: &headers)
        #expect(headers.map(\.name) == ["traceparent"])
        // A tracestate without a traceparent belongs to no trace we continue: it does not go on.
        var orphan = HTTPHeaders([("tracestate", "congo=t61rc"), ("B3", "1")])
        TraceHeaders.write(.root(sampled: false), into: &orphan)
        #expect(orphan.map(\.name) == ["traceparent"])
    }

    @Test func sampling() {
        let head = { (headers: [(String, String)]) in
            HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(headers))
        }
        // A parent's decision is followed whatever the ratio; a root is sampled at the ratio.
        #expect(
            HopTrace(
                head([("traceparent", "00-\(trace)-\(parent)-01")]), direction: .outbound, name: "x", ratio: 0,
                export: nil
            ).hop.sampled)
        #expect(
            !HopTrace(
                head([("traceparent", "00-\(trace)-\(parent)-00")]), direction: .outbound, name: "x", ratio: 1,
                export: nil
            ).hop.sampled)
        #expect(HopTrace(head([]), direction: .outbound, name: "x", ratio: 1, export: nil).hop.sampled)
        #expect(!HopTrace(head([]), direction: .outbound, name: "x", ratio: 0, export: nil).hop.sampled)
        let sampled = (0..<10_000).filter { _ in
            HopTrace(head([]), direction: .outbound, name: "x", ratio: 0.1, export: nil).hop.sampled
        }.count
        #expect((800...1200).contains(sampled), "\(sampled) of 10,000 at 10 %")
        // An unsampled hop continues the trace with a span ID of its own, and passes it on.
        var hop = HopTrace(
            head([("traceparent", "00-\(trace)-\(parent)-00")]), direction: .outbound, name: "x", ratio: 0, export: nil)
        #expect(hop.hop.traceIDHex == trace && hop.hop.spanIDHex != parent)
        var out = head([("traceparent", "00-\(trace)-\(parent)-00")])
        let started = hop.startTry(
            endpoint: EndpointTarget(address: HostPort(host: "127.0.0.1", port: 1), identity: nil), export: nil)
        #expect(!started, "no attempt span without an exporter")
        hop.inject(into: &out)
        #expect(out.headers["traceparent"] == [hop.hop.traceparent])
    }
}
