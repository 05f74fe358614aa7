import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Gives memory back to the system after a burst of connections has closed. glibc keeps freed heap in its
/// per-thread arenas: after 2,000 half-open connections came and went, a process stayed 130 MB above its
/// baseline (measured on the control plane). Called periodically; when the listeners' connections fell well
/// below their peak since the last call, `malloc_trim(0)` returns the free pages of every arena
/// (a few milliseconds, only after bursts, at most once per 10 s: it holds each arena's lock while it runs), and
/// the peak restarts from now. glibc only: elsewhere (musl, Darwin) it does nothing.
public enum MemoryAfterBursts {
    /// Connections that must have closed since the peak for a trim to be worth it.
    static let burst = 256
    static let minimumInterval = Duration.seconds(10)
    private static let lastTrim = Mutex<ContinuousClock.Instant?>(nil)

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
        let now = ContinuousClock.now
        let due = lastTrim.withLock { last in
            guard last.map({ now - $0 >= minimumInterval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return false }  // the burst stays pending: the peak is kept until a trim is due
        for gate in gates { gate.resetPeak() }
        _ = mallocTrim?(0)
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
