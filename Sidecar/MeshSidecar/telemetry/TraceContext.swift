import Synchronization

/// Where one hop stands in a distributed trace: the W3C trace context (trace ID, the span that is the next
/// hop's parent, whether the trace is sampled) and the vendor entries of `tracestate`, passed on unchanged.
struct TraceContext: Equatable, Sendable {
    /// 128 bits, never all zero.
    var traceHigh: UInt64
    var traceLow: UInt64
    /// 64 bits, never zero.
    var spanID: UInt64
    var sampled: Bool
    /// The caller's `tracestate`, only ever passed on with the trace it came with.
    var traceState: String? = nil

    /// A new trace rooted here, with a new span.
    static func root(sampled: Bool) -> TraceContext {
        TraceContext(
            traceHigh: TraceIDs.next(), traceLow: TraceIDs.next(), spanID: TraceIDs.next(), sampled: sampled,
            traceState: nil)
    }

    /// The same trace, continued by a new span of this hop.
    func child() -> TraceContext {
        var next = self
        next.spanID = TraceIDs.next()
        return next
    }

    /// `00-<trace-id>-<parent-id>-<flags>`, lowercase.
    var traceparent: String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(55)
        bytes.append(contentsOf: [0x30, 0x30, 0x2D])  // "00-"
        Self.appendHex(traceHigh, to: &bytes)
        Self.appendHex(traceLow, to: &bytes)
        bytes.append(0x2D)
        Self.appendHex(spanID, to: &bytes)
        bytes.append(contentsOf: [0x2D, 0x30, sampled ? 0x31 : 0x30])
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The trace ID as 32 lowercase hex digits (access logs, journald's `TRACE_ID=`).
    var traceIDHex: String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        Self.appendHex(traceHigh, to: &bytes)
        Self.appendHex(traceLow, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The span ID as 16 lowercase hex digits.
    var spanIDHex: String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        Self.appendHex(spanID, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendHex(_ value: UInt64, to bytes: inout [UInt8]) {
        var shift = 60
        while shift >= 0 {
            bytes.append(digits[Int((value >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }
}

/// Trace and span IDs: SplitMix64 over one atomic counter seeded at random once per process — unpredictable
/// enough for IDs (they are not secrets), and no system call per request.
enum TraceIDs {
    private static let state = Atomic<UInt64>(UInt64.random(in: 1 ... .max))

    static func next() -> UInt64 {
        while true {
            let (_, seed) = state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed)
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            if z != 0 { return z }
        }
    }
}
