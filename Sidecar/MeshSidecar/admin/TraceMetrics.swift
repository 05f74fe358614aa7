import Prometheus

/// Tracing's own counters: trace context the sidecar could not read, hops sampled, and spans the exporter lost.
struct TraceMetrics: Sendable {
    /// Requests whose `traceparent` or B3 headers were malformed (a new trace was started; they were not passed on).
    let malformed: [TraceHeaders.Format: Counter]
    /// Hops that started a span (sampled, with an exporter).
    let spans: Counter
    /// Spans swift-otel could not deliver (queue full, export failed), and failed export calls.
    let dropped: Counter
    let failedExports: Counter
    /// Access-log lines dropped because the output (stdout, journald) could not keep up.
    let accessLinesDropped: Counter

    init(_ registry: PrometheusCollectorRegistry) {
        malformed = Dictionary(
            uniqueKeysWithValues: TraceHeaders.Format.allCases.map { format in
                (
                    format,
                    registry.makeCounter(
                        name: "mesh_trace_context_malformed_total", labels: [("format", format.rawValue)],
                        help: "Requests with unreadable trace context (w3c traceparent or b3): a new trace was started")
                )
            })
        spans = registry.makeCounter(
            name: "mesh_trace_spans_started_total", help: "Spans started for sampled hops (attempt spans included)")
        dropped = registry.makeCounter(
            name: "mesh_trace_spans_dropped_total",
            help: "Spans lost before the collector had them: the export queue was full or an export failed")
        accessLinesDropped = registry.makeCounter(
            name: "mesh_access_log_dropped_total",
            help: "Access-log lines dropped because stdout or journald could not keep up (4 MiB kept at most)")
        failedExports = registry.makeCounter(
            name: "mesh_trace_exports_failed_total", help: "Span batches the OTLP exporter could not deliver")
    }
}
