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

    /// `00-<trace-id>-<parent-id>-<flags>`, lowercase. Written straight into the string's storage (one
    /// allocation: it is sent on every hop).
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { out in
            out[0] = 0x30
            out[1] = 0x30
            out[2] = 0x2D
            Self.writeHex(traceHigh, into: out, at: 3)
            Self.writeHex(traceLow, into: out, at: 19)
            out[35] = 0x2D
            Self.writeHex(spanID, into: out, at: 36)
            out[52] = 0x2D
            out[53] = 0x30
            out[54] = sampled ? 0x31 : 0x30
            return 55
        }
    }

    /// The trace ID as 32 lowercase hex digits (access logs, journald's `TRACE_ID=`).
    var traceIDHex: String {
        String(unsafeUninitializedCapacity: 32) { out in
            Self.writeHex(traceHigh, into: out, at: 0)
            Self.writeHex(traceLow, into: out, at: 16)
            return 32
        }
    }

    /// The span ID as 16 lowercase hex digits.
    var spanIDHex: String {
        String(unsafeUninitializedCapacity: 16) { out in
            Self.writeHex(spanID, into: out, at: 0)
            return 16
        }
    }

    /// 16 lowercase hex digits of `value` at `offset`.
    static func writeHex(_ value: UInt64, into out: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for i in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * i)) & 0xF
            out[offset + i] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
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
