import NIOHTTP1

/// A gRPC "Trailers-Only" response is a single HEADERS frame with END_STREAM that carries `grpc-status`.
/// The HTTP/1-style parts the forwarding layer works with cannot say "this head ends the stream", so a
/// downstream HTTP/2 codec would send HEADERS and then an empty DATA frame, which gRPC clients reject
/// ("Stream removed"). Instead the status fields move from the head to the trailers: HEADERS, then
/// HEADERS with END_STREAM, an equally valid gRPC response.
enum GRPCTrailersOnly {
    static let statusFields = ["grpc-status", "grpc-message", "grpc-status-details-bin"]

    /// Removes the status fields from a gRPC response head that carries them, returning them as trailers.
    static func split(_ headers: inout HTTPHeaders) -> HTTPHeaders? {
        guard headers.first(name: "content-type")?.hasPrefix("application/grpc") == true,
            headers.contains(name: "grpc-status")
        else { return nil }
        var trailers = HTTPHeaders()
        for name in statusFields {
            for value in headers[name] { trailers.add(name: name, value: value) }
            headers.remove(name: name)
        }
        return trailers
    }

    /// The trailers to send: those the upstream sent, plus any status moved out of the head.
    static func merge(_ moved: HTTPHeaders?, into trailers: HTTPHeaders?) -> HTTPHeaders? {
        guard let moved else { return trailers }
        var merged = trailers ?? HTTPHeaders()
        for (name, value) in moved where !merged.contains(name: name) { merged.add(name: name, value: value) }
        return merged
    }
}
