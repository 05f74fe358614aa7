import Foundation
import MeshTelemetry

/// One JSON line per exchange (README, "Access log"): every exchange at `ratio` 1, else that share of them
/// plus every one that failed (a 5xx, a sidecar-made error, a reset) and every one whose trace is recorded.
struct AccessLog: Sendable {
    let ratio: Double
    let sink: AccessLogSink

    func wants(_ completion: ExchangeCompletion, sampledTrace: Bool) -> Bool {
        if ratio >= 1 || sampledTrace || completion.cause != nil || completion.status >= 500 { return true }
        return ratio > 0 && Double(TraceIDs.next() >> 11) < ratio * Double(1 << 53)
    }

    func write(_ completion: ExchangeCompletion, hop: HopTrace?, service: String, peer: PeerLabels, route: String) {
        let q = JSONLogHandler.quote
        let request = hop?.request
        let micros =
            completion.duration.components.seconds * 1_000_000
            + completion.duration.components.attoseconds / 1_000_000_000_000
        var line = "{\"ts\":\(q(JSONLogHandler.timestamp())),\"type\":\"access\""
        line += ",\"direction\":\(q(completion.direction.rawValue)),\"service\":\(q(service))"
        line += ",\"peer_service\":\(q(peer.service))"
        if let identity = peer.identity { line += ",\"peer_identity\":\(q(identity))" }
        line += ",\"route\":\(q(route))"
        if let request {
            line += ",\"method\":\(q(request.method.rawValue)),\"path\":\(q(String(request.uri.prefix { $0 != "?" })))"
            if let authority = request.headers.first(name: "host") { line += ",\"authority\":\(q(authority))" }
        }
        line += ",\"status\":\(completion.status)"
        if let cause = completion.cause { line += ",\"cause\":\(q(cause))" }
        line += ",\"duration_ms\":\(micros / 1000).\(String(1000 + micros % 1000).dropFirst())"
        line += ",\"request_bytes\":\(completion.requestBytes),\"response_bytes\":\(completion.responseBytes)"
        line += ",\"attempts\":\(completion.attempts)"
        if let endpoint = completion.endpoint { line += ",\"upstream\":\(q("\(endpoint.address)"))" }
        if let trace = hop?.hop {
            line +=
                ",\"trace_id\":\(q(trace.traceIDHex)),\"span_id\":\(q(trace.spanIDHex)),\"sampled\":\(trace.sampled)"
        }
        line += "}"
        sink.write(
            line,
            fields: [
                ("PRIORITY", "6"), ("SYSLOG_IDENTIFIER", "mesh-sidecar"), ("MESH_ACCESS", "1"),
                ("MESH_SERVICE", service), ("MESH_PEER_SERVICE", peer.service), ("MESH_STATUS", "\(completion.status)"),
                ("TRACE_ID", hop?.hop.traceIDHex ?? ""), ("SPAN_ID", hop?.hop.spanIDHex ?? ""),
            ])
    }
}
