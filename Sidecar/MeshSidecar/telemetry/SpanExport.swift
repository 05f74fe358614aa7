import Foundation
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// The sidecar's spans, exported with swift-otel over OTLP/HTTP (protobuf) in batches. Only sampled hops reach
/// it (the sidecar decides sampling itself and propagates unsampled context without a tracer), so an unsampled
/// request costs nothing here. swift-otel's batch processor keeps at most `maxQueueSize` spans; a slow, failing or
/// absent collector loses spans (counted from swift-otel's diagnostic log) rather than memory or request time.
final class SpanExport: Sendable {
    /// Starts a span of `kind` under `parent` (a new trace when nil): the span, and its context to send on.
    private let start: @Sendable (String, SpanKind, TraceContext?) -> (any Span, TraceContext)
    /// The exporter's background work (batching, the HTTP client), run in the sidecar's service group.
    let service: any Service
    let losses: ExportLosses

    init(endpoint: String, serviceName: String, losses: ExportLosses, logger: Logger) throws {
        var config = OTel.Configuration.default
        config.serviceName = serviceName
        config.propagators = [.traceContext]
        config.metrics.enabled = false
        config.logs.enabled = false
        config.traces.enabled = true
        // The sidecar samples before it asks for a span: every span it starts is to be recorded.
        config.traces.sampler = .alwaysOn
        config.traces.exporter = .otlp
        config.traces.otlpExporter.protocol = .httpProtobuf
        config.traces.otlpExporter.endpoint = endpoint
        config.traces.otlpExporter.timeout = .seconds(5)
        config.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        config.traces.batchSpanProcessor.exportTimeout = .seconds(10)
        config.diagnosticLogger = .custom(Logger(label: "otel") { _ in losses.handler(forwardingTo: logger) })
        config.diagnosticLogLevel = .warning
        // swift-otel lets OTEL_* variables override the configuration given in code. The sidecar's flags decide
        // these (a propagator other than W3C, another sampler or endpoint, a lower log level would break
        // propagation, parent-based sampling or the dropped-span count; OTEL_PROPAGATORS=baggage even stops the
        // process), so they are pinned here; the batch processor's OTEL_BSP_* tuning still applies.
        Self.pin([
            "OTEL_PROPAGATORS": "tracecontext", "OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": serviceName, "OTEL_LOG_LEVEL": "warning", "OTEL_SDK_DISABLED": "false",
            "OTEL_TRACES_SAMPLER_ARG": nil,
        ])
        let backend = try OTel.makeTracingBackend(configuration: config)
        service = backend.service
        start = Self.starter(backend.factory)
        self.losses = losses
    }

    private static func pin(_ variables: [String: String?]) {
        for (name, value) in variables {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
    }

    func startSpan(_ name: String, kind: SpanKind, parent: TraceContext?) -> (any Span, TraceContext) {
        start(name, kind, parent)
    }

    private static func starter<T: Tracer>(_ tracer: T)
        -> @Sendable (String, SpanKind, TraceContext?) -> (
            any Span, TraceContext
        )
    {
        { name, kind, parent in
            var context = ServiceContext.topLevel
            if let parent { tracer.extract(parent, into: &context, using: ContextExtractor()) }
            let span = tracer.startSpan(name, context: context, ofKind: kind)
            var carrier = InjectedContext()
            tracer.inject(span.context, into: &carrier, using: ContextInjector())
            // Always there (the W3C propagator is pinned); were it not, the hop would still continue its parent.
            var own =
                carrier.traceparent.flatMap(TraceHeaders.parseTraceparent)
                ?? parent?.child() ?? TraceContext.root(sampled: true)
            own.traceState = parent?.traceState
            return (span, own)
        }
    }
}

/// Spans swift-otel could not deliver, read from its diagnostic log (it exposes no counter): a full queue
/// ("Spans were dropped…", `dropped_count`) and failed exports ("Failed to export batch.", `batch_size`).
final class ExportLosses: Sendable {
    let dropped = Atomic<Int>(0)
    private let metrics: TraceMetrics
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

    init(metrics: TraceMetrics) { self.metrics = metrics }

    func handler(forwardingTo logger: Logger) -> any LogHandler { DiagnosticHandler(losses: self, logger: logger) }

    private func lost(_ spans: Int) {
        dropped.add(spans, ordering: .relaxed)
        metrics.dropped.increment(by: Int64(spans))
    }

    fileprivate func record(_ message: String, _ metadata: Logger.Metadata, logger: Logger) {
        if message.hasPrefix("Spans were dropped"), let n = metadata["dropped_count"].flatMap({ Int("\($0)") }) {
            lost(n)
        } else if message.hasPrefix("Failed to export batch") {
            metrics.failedExports.increment()
            if let n = metadata["batch_size"].flatMap({ Int("\($0)") }) { lost(n) }
        } else {
            return
        }
        // One warning a minute at most: a collector that is down must not flood the log.
        let now = ContinuousClock.now
        let due = lastWarning.withLock { last in
            guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
            last = now
            return true
        }
        if due {
            logger.warning(
                "spans are being lost: the trace collector is slow, failing or unreachable",
                metadata: [
                    "dropped_total": "\(dropped.load(ordering: .relaxed))", "otel": "\(message)",
                    "error": metadata["error"].map { "\($0)" } ?? "",
                ])
        }
    }
}

private struct DiagnosticHandler: LogHandler {
    let losses: ExportLosses
    let logger: Logger
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        losses.record("\(event.message)", metadata.merging(event.metadata ?? [:]) { $1 }, logger: logger)
    }
}

private struct InjectedContext {
    var traceparent: String?
}

private struct ContextInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout InjectedContext) {
        if key == TraceHeaders.traceparent { carrier.traceparent = value }
    }
}

private struct ContextExtractor: Extractor {
    func extract(key: String, from carrier: TraceContext) -> String? {
        switch key {
        case TraceHeaders.traceparent: carrier.traceparent
        case TraceHeaders.tracestate: carrier.traceState
        default: nil
        }
    }
}
