import NIOHTTP1

/// Reading and writing trace context in request headers: W3C `traceparent`/`tracestate` first; B3 (the single
/// `b3` header, then the `X-B3-*` headers) accepted only when there is no `traceparent`, and converted. What goes
/// on is always W3C: the B3 headers are removed once read, and a malformed `traceparent` is never passed on.
enum TraceHeaders {
    static let traceparent = "traceparent"
    static let tracestate = "tracestate"
    static let b3Names = ["b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"]
    /// Longer `tracestate` values are dropped rather than cut (W3C allows either; a cut entry would be wrong).
    static let maxTraceStateBytes = 512

    enum Format: String, CaseIterable, Sendable {
        case w3c, b3
    }

    /// What a request carried.
    enum Incoming: Equatable {
        /// No trace context at all.
        case none
        /// A parent to continue, and the format it came in.
        case parent(TraceContext, Format)
        /// B3 IDs without a sampling flag (B3's "deferred"): the trace is continued, sampling decided here.
        case deferred(TraceContext)
        /// A header that claims trace context but cannot be read: counted, and a new trace starts.
        case malformed(Format)
        /// B3's sampling-only form (`b3: 0|1|d`, `X-B3-Sampled` alone): no parent, but the caller's decision.
        case decision(sampled: Bool)
    }

    static func extract(_ headers: HTTPHeaders) -> Incoming {
        if let value = headers.first(name: traceparent) {
            guard var context = parseTraceparent(value) else { return .malformed(.w3c) }
            let state = headers[canonicalForm: tracestate]
            if !state.isEmpty {
                let joined = state.count == 1 ? String(state[0]) : state.joined(separator: ",")
                if joined.utf8.count <= maxTraceStateBytes { context.traceState = joined }
            }
            return .parent(context, .w3c)
        }
        if let single = headers.first(name: "b3") { return parseB3Single(single) }
        if headers.contains(name: "x-b3-traceid") || headers.contains(name: "x-b3-spanid")
            || headers.contains(name: "x-b3-sampled") || headers.contains(name: "x-b3-flags")
        {
            return parseB3Multi(headers)
        }
        return .none
    }

    /// Writes `context` for the next hop: every trace header the request carried goes (a `tracestate` belongs to
    /// the trace it came with, which `context.traceState` already carries when it is continued; B3 is converted).
    static func write(_ context: TraceContext, into headers: inout HTTPHeaders) {
        // One pass, without allocating, to see whether there is anything to remove (usually there is not).
        let stale = headers.contains { isIncomingTraceHeader($0.name) }
        if stale {
            headers.remove(name: tracestate)
            for name in b3Names { headers.remove(name: name) }
        }
        headers.replaceOrAdd(name: traceparent, value: context.traceparent)
        if let state = context.traceState { headers.add(name: tracestate, value: state) }
    }

    /// `tracestate`, `b3` or `x-b3-…`, in any case.
    static func isIncomingTraceHeader(_ name: String) -> Bool {
        let bytes = name.utf8
        func starts(with prefix: StaticString) -> Bool {
            guard bytes.count >= prefix.utf8CodeUnitCount else { return false }
            return zip(bytes, UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)).allSatisfy
            {
                ($0 | 0x20) == $1
            }
        }
        switch bytes.count {
        case 2: return starts(with: "b3")
        case 10: return starts(with: "tracestate")
        default: return bytes.count > 5 && starts(with: "x-b3-")
        }
    }

    // MARK: W3C

    /// `version-traceid-parentid-flags`. Version 00 is exactly 55 characters; a later version may append fields
    /// after a `-` and is read as 00; version ff, upper-case hex, and all-zero IDs are invalid.
    static func parseTraceparent(_ value: String) -> TraceContext? {
        var value = value
        return value.withUTF8 { bytes -> TraceContext? in
            guard bytes.count >= 55 else { return nil }
            guard let version = hex(bytes, 0, 2), version != 0xFF else { return nil }
            if version == 0 {
                guard bytes.count == 55 else { return nil }
            } else if bytes.count > 55, bytes[55] != UInt8(ascii: "-") {
                return nil
            }
            guard bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
                let high = hex(bytes, 3, 16), let low = hex(bytes, 19, 16), high | low != 0,
                let span = hex(bytes, 36, 16), span != 0, let flags = hex(bytes, 53, 2)
            else { return nil }
            return TraceContext(traceHigh: high, traceLow: low, spanID: span, sampled: flags & 1 == 1, traceState: nil)
        }
    }

    // MARK: B3

    /// `traceid-spanid[-sampled[-parentspanid]]`, or the sampling decision alone (`0`, `1`, `d`).
    static func parseB3Single(_ value: String) -> Incoming {
        let fields = value.split(separator: "-", omittingEmptySubsequences: false)
        if fields.count == 1 {
            guard let sampled = b3Sampled(fields[0]) else { return .malformed(.b3) }
            return .decision(sampled: sampled)
        }
        guard fields.count <= 4, let (high, low) = b3TraceID(fields[0]), let span = b3SpanID(fields[1]) else {
            return .malformed(.b3)
        }
        if fields.count == 4, b3SpanID(fields[3]) == nil { return .malformed(.b3) }
        let context = TraceContext(traceHigh: high, traceLow: low, spanID: span, sampled: false)
        guard fields.count >= 3 else { return .deferred(context) }
        guard let sampled = b3Sampled(fields[2]) else { return .malformed(.b3) }
        var decided = context
        decided.sampled = sampled
        return .parent(decided, .b3)
    }

    static func parseB3Multi(_ headers: HTTPHeaders) -> Incoming {
        var sampled: Bool?
        if headers.first(name: "x-b3-flags") == "1" {
            sampled = true
        } else if let s = headers.first(name: "x-b3-sampled") {
            guard let value = b3Sampled(Substring(s.lowercased() == "true" ? "1" : s.lowercased() == "false" ? "0" : s))
            else { return .malformed(.b3) }
            sampled = value
        }
        let trace = headers.first(name: "x-b3-traceid")
        let span = headers.first(name: "x-b3-spanid")
        if trace == nil, span == nil, let sampled { return .decision(sampled: sampled) }
        guard let trace, let span, let (high, low) = b3TraceID(Substring(trace)), let id = b3SpanID(Substring(span))
        else { return .malformed(.b3) }
        let context = TraceContext(traceHigh: high, traceLow: low, spanID: id, sampled: sampled ?? false)
        return sampled == nil ? .deferred(context) : .parent(context, .b3)
    }

    /// 16 or 32 hex digits (a 64-bit ID is the low half); B3 allows upper case.
    private static func b3TraceID(_ text: Substring) -> (UInt64, UInt64)? {
        let lower = text.lowercased()
        var bytes = Array(lower.utf8)
        guard bytes.count == 16 || bytes.count == 32 else { return nil }
        if bytes.count == 16 { bytes = Array(repeating: UInt8(ascii: "0"), count: 16) + bytes }
        return bytes.withUnsafeBufferPointer { b in
            guard let high = hex(b, 0, 16), let low = hex(b, 16, 16), high | low != 0 else { return nil }
            return (high, low)
        }
    }

    private static func b3SpanID(_ text: Substring) -> UInt64? {
        let bytes = Array(text.lowercased().utf8)
        guard bytes.count == 16 else { return nil }
        return bytes.withUnsafeBufferPointer { b in hex(b, 0, 16).flatMap { $0 == 0 ? nil : $0 } }
    }

    private static func b3Sampled(_ text: Substring) -> Bool? {
        switch text {
        case "1", "d": true
        case "0": false
        default: nil
        }
    }

    /// `count` lowercase hex digits at `start`, or nil.
    static func hex(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> UInt64? {
        var value: UInt64 = 0
        for i in start..<(start + count) {
            let c = bytes[i]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c &- UInt8(ascii: "a") &+ 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}
