import NIOHTTP1

/// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded; neither are
/// headers named in `Connection`, nor proxy credentials meant for us. `Trailer` is end-to-end and kept, and so is `TE: trailers`;
/// `Transfer-Encoding` is left to the codecs, which re-frame each hop.
enum HopByHopHeaders {
    static let names = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "upgrade",
    ]

    static func strip(_ headers: inout HTTPHeaders) {
        // `TE: trailers` is the one TE value HTTP/2 allows, and gRPC servers require it: it survives each hop.
        let trailers = headers[canonicalForm: "te"].contains { $0.lowercased() == "trailers" }
        for listed in headers[canonicalForm: "connection"] { headers.remove(name: String(listed)) }
        for name in names { headers.remove(name: name) }
        if trailers { headers.add(name: "te", value: "trailers") }
    }

    /// The protocol an HTTP/1.1 request asks to upgrade to (`Connection: upgrade` + `Upgrade: X`), if any.
    static func upgrade(_ headers: HTTPHeaders) -> String? {
        guard headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else { return nil }
        return headers.first(name: "upgrade")
    }

    /// Puts an upgrade's two headers back after `strip`: they are hop-by-hop, but every hop repeats them.
    static func restoreUpgrade(_ proto: String, in headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: "connection", value: "upgrade")
        headers.replaceOrAdd(name: "upgrade", value: proto)
    }
}
