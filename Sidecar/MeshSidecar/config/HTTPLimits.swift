import NIOCore
import NIOHTTP1

/// Limits on what a client may send before the sidecar has a request to route. Defaults follow Envoy's
/// (60 KiB of headers, 100 fields) rather than NIO's roomier ones; URL bytes count towards the total.
struct HTTPLimits: Sendable {
    var maxHeaderBytes = 60 * 1024
    var maxHeaderFields = 100
    /// From the first byte of a request until its head is complete (slowloris).
    var requestHeadTimeout: TimeAmount = .seconds(10)

    var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = maxHeaderBytes
        limits.maxHeaderListSize = maxHeaderBytes
        limits.maxHeaderFieldCount = maxHeaderFields
        return limits
    }
}
