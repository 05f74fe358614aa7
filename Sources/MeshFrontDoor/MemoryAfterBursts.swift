#if canImport(Glibc)
    import Glibc
#endif

/// Gives memory back to the system after a burst of connections has closed. glibc keeps freed heap in its
/// per-thread arenas: after 2,000 half-open connections came and went, a process stayed 130 MB above its
/// baseline (measured on the control plane). Called periodically; when the listeners' connections fell well
/// below their peak since the last call, `malloc_trim(0)` returns the free pages of every arena
/// (a few milliseconds, only after bursts), and the peak restarts from now.
public enum MemoryAfterBursts {
    /// Connections that must have closed since the peak for a trim to be worth it.
    static let burst = 256

    /// Returns whether it trimmed.
    @discardableResult
    public static func reclaim(_ gates: [ConnectionGate]) -> Bool {
        var closedSincePeak = 0
        var open = 0
        for gate in gates {
            open += gate.openConnections
            closedSincePeak += gate.peakConnections - gate.openConnections
        }
        // A burst: many closed, or the tail of one (most of what was open at the last trim has closed since).
        guard closedSincePeak >= burst || (closedSincePeak >= burst / 2 && open < closedSincePeak) else {
            return false
        }
        for gate in gates { gate.resetPeak() }
        mallocTrim?(0)
        return true
    }

    /// glibc's `malloc_trim`, which Swift's Glibc module does not export; nil elsewhere (musl, Darwin).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
            return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
            return nil
        #endif
    }()
}
