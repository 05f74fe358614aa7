import Foundation
import MeshTelemetry
import NIOHTTP1

/// What every exchange tells the operator, read from its one completion event: the per-peer metrics, the hop's
/// span (and its attempt spans), and an access-log line. Trace context is read and written here for every
/// request, sampled or not, so a trace is never broken at a sidecar.
final class ExchangeTelemetry: Sendable {
    let metrics: SidecarMetrics
    /// The sidecar's own service (the inbound span's and the access log's `service`).
    let service: String
    /// The share of new traces (no sampled or unsampled parent) that are sampled here.
    let sampling: Double
    let export: SpanExport?
    let accessLog: AccessLog?

    init(metrics: SidecarMetrics, service: String, sampling: Double, export: SpanExport?, accessLog: AccessLog?) {
        self.metrics = metrics
        self.service = service
        self.sampling = sampling
        self.export = export
        self.accessLog = accessLog
    }

    /// The exchange is routed: its trace context is read (a malformed one counted) and, if sampled, its span starts.
    func begin(_ head: HTTPRequestHead, direction: Direction) -> HopTrace {
        let hop = HopTrace(
            head, direction: direction,
            name: "\(head.method.rawValue) \(direction == .inbound ? service : head.headers.first(name: "host") ?? "")",
            ratio: sampling, export: export)
        if case .malformed(let format) = hop.incoming { metrics.tracing.malformed[format]!.increment() }
        if hop.span != nil { metrics.tracing.spans.increment() }
        return hop
    }

    /// A try begins: an attempt span on the caller's side of a sampled hop.
    func startTry(_ hop: inout HopTrace, endpoint: EndpointTarget) {
        if hop.startTry(endpoint: endpoint, export: export) { metrics.tracing.spans.increment() }
    }

    /// The exchange ended.
    func completed(_ completion: ExchangeCompletion, hop: inout HopTrace?, peer: PeerLabels, route: String) {
        metrics.exchangeCompleted(completion, peer: peer.service)
        if let accessLog, accessLog.wants(completion, sampledTrace: hop?.span != nil) {
            accessLog.write(completion, hop: hop, service: service, peer: peer, route: route)
        }
        hop?.finish(completion, peer: peer, route: route)
    }
}
