import NIOCore
import NIOHTTP1

/// Deadline propagation on the wire. Between sidecars, and from a sidecar to its app, `x-mesh-timeout-ms`
/// carries the time the caller has left, in milliseconds, when the request was sent (relative, so hosts need
/// no shared clock; Envoy's `x-envoy-expected-rq-timeout-ms` works the same way). gRPC's own `grpc-timeout` is
/// honoured on the way in and lowered (or added) on the way out, so a gRPC server sees the deadline natively.
enum DeadlineHeaders {
    static let timeoutHeader = "x-mesh-timeout-ms"
    static let grpcTimeoutHeader = "grpc-timeout"
    /// Longer values are ignored as nonsense (a day).
    static let maximum = TimeAmount.hours(24)

    /// The time a request says its caller has left: the shorter of `x-mesh-timeout-ms` and `grpc-timeout`, if
    /// either is valid.
    static func remaining(in headers: HTTPHeaders) -> TimeAmount? {
        var shortest: TimeAmount?
        if let text = headers.first(name: timeoutHeader), let ms = Int64(text), ms >= 0 {
            shortest = .milliseconds(ms)
        }
        if let text = headers.first(name: grpcTimeoutHeader), let grpc = grpcTimeout(text) {
            shortest = shortest.map { min($0, grpc) } ?? grpc
        }
        guard let shortest, shortest <= maximum else { return nil }
        return shortest
    }

    /// Writes what is left at `now` of `deadline` into the request headers: always `x-mesh-timeout-ms`;
    /// `grpc-timeout` for a gRPC call (lowered if the caller's own was longer).
    static func write(deadline: NIODeadline, at now: NIODeadline, isGRPC: Bool, into headers: inout HTTPHeaders) {
        let left = max(deadline - now, .milliseconds(1))
        let ms = (left.nanoseconds + 999_999) / 1_000_000
        headers.replaceOrAdd(name: timeoutHeader, value: String(ms))
        if isGRPC { headers.replaceOrAdd(name: grpcTimeoutHeader, value: "\(ms)m") }
    }

    /// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), per the gRPC HTTP/2 protocol.
    static func grpcTimeout(_ text: String) -> TimeAmount? {
        guard let unit = text.last, text.count >= 2, text.count <= 9, let value = Int64(text.dropLast()), value >= 0
        else { return nil }
        switch unit {
        case "H": return .hours(value)
        case "M": return .minutes(value)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }
}
