import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshIdentity
import MeshTelemetry
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// `mesh-sidecar`: obtain an identity (from disk, else with the join token), open the listeners, then run
/// renewal, discovery and registration until SIGTERM.
public struct Sidecar {
    let configuration: SidecarConfiguration
    let logger: Logger

    public init(configuration: SidecarConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let drain = DrainGroup(group: group)
        do {
            try await serve(on: group, drain: drain)
        } catch {
            drain.release()
            try? await group.shutdownGracefully()
            throw error
        }
        // Nothing that schedules on the loops when freed may outlive them: the drain helpers are let go here,
        // whichever thread frees the finished services.
        drain.release()
        try? await group.shutdownGracefully()
    }

    private func serve(on group: MultiThreadedEventLoopGroup, drain: DrainGroup) async throws {
        let config = configuration
        let identity = try await firstIdentity()
        let tls = try TLSState(identity: identity, trustDomain: config.trustDomain)
        logger.notice(
            "identity ready",
            metadata: [
                "identity": "\(identity.spiffeID)", "serial": "\(identity.serialHex)",
                "not_after": "\(identity.notAfter)",
            ])
        let cache: EndpointCache
        switch config.mode {
        case .controlPlane(_, _, let dataDir):
            cache = EndpointCache(file: dataDir + "/endpoints.json") { [logger] count, skipped in
                guard count + skipped > 0 else { return }
                logger.notice(
                    "last known endpoints loaded; watching them again",
                    metadata: ["destinations": "\(count)", "skipped": "\(skipped)"])
            }
        case .standalone(_, let endpoints):
            cache = EndpointCache(staticEndpoints: endpoints, trustDomain: config.trustDomain)
        }
        let policyFile: String? =
            switch config.mode {
            case .controlPlane(_, _, let dataDir): dataDir + "/policy.json"
            case .standalone: nil
            }
        let policy = SidecarPolicy(
            path: policyFile, service: config.service, appProtocol: config.appProtocol, logger: logger)
        if !config.policy.isEmpty {
            if let refusal = policy.apply(version: 1, config.policy) {
                throw MeshError(.invalidPolicy, "--policy: \(refusal)")
            }
            logger.notice("policy file applied", metadata: ["documents": "\(config.policy.count)"])
        }
        let ready = NIOLockedValueBox(false)
        let metrics = SidecarMetrics()
        let (telemetry, telemetryServices) = try makeTelemetry(metrics)
        let (listeners, advertise) = try await bindListeners(
            tls: tls, cache: cache, policy: policy, ready: ready, telemetry: telemetry, drain: drain, group: group)

        // Telemetry first: services stop in reverse order, so spans and access lines of the drain still go out.
        var services: [any Service] =
            telemetryServices + [
                ListenerService(
                    drain: drain, admin: listeners.admin, group: group, drainTimeout: config.drainTimeout, cache: cache,
                    gates: { metrics.gates }, logger: logger)
            ]
        switch config.mode {
        case .controlPlane(let control, _, let dataDir):
            // One connection to the control plane carries all of these; it is listed first so that it stops
            // last (services stop in reverse order), after the deregistration.
            let session = ControlPlaneSession(control: control) { tls.current.identity }
            services += [
                ControlPlaneSessionService(session: session),
                CertificateRenewalService(tls: tls, session: session, dataDir: dataDir, logger: logger),
                DiscoveryWatchService(cache: cache, session: session, logger: logger),
                RegistrationService(
                    session: session, service: config.service, advertise: advertise,
                    labels: config.labels.merging([AppProtocol.label: config.appProtocol.rawValue]) { $1 },
                    app: config.app,
                    healthCheck: config.healthCheck, group: group, ready: ready, logger: logger),
                PolicySyncService(
                    policy: policy, session: session, advertise: advertise, cache: cache,
                    upstreams: config.upstreams.map(\.service), logger: logger),
            ]
        case .standalone(let paths, _):
            services.append(
                IdentityFileWatcher(
                    paths: paths, service: config.service, tls: tls, interval: .seconds(1), logger: logger))
            ready.withLockedValue { $0 = true }
        }
        let serviceGroup = ServiceGroup(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await serviceGroup.run()
    }

    /// Spans (when an OTLP endpoint is set), the access log (when on), and their background services.
    private func makeTelemetry(_ metrics: SidecarMetrics) throws -> (ExchangeTelemetry, [any Service]) {
        let config = configuration.telemetry
        var services: [any Service] = []
        var export: SpanExport?
        if let endpoint = config.tracesEndpoint {
            do {
                export = try SpanExport(
                    endpoint: endpoint, serviceName: configuration.service.value,
                    losses: ExportLosses(metrics: metrics.tracing), logger: logger)
            } catch {
                throw MeshError(.invalidConfiguration, "--otlp-endpoint \(endpoint): \(error)")
            }
            services.append(export!.service)
            logger.notice(
                "exporting spans over OTLP/HTTP",
                metadata: ["endpoint": "\(endpoint)", "sampling": "\(config.traceSampling)"])
        }
        let dropped = metrics.tracing.accessLinesDropped
        let sink =
            config.accessLog > 0
            ? AccessLogSink(target: MeshLogging.target, onDrop: { dropped.increment(by: Int64($0)) }) : nil
        services.append(TelemetryService(sink: sink, peers: metrics.peers, logger: logger))
        let telemetry = ExchangeTelemetry(
            metrics: metrics, service: configuration.service.value, sampling: config.traceSampling, export: export,
            accessLog: sink.map { AccessLog(ratio: config.accessLog, sink: $0) })
        return (telemetry, services)
    }

    private func firstIdentity() async throws -> WorkloadIdentity {
        let config = configuration
        switch config.mode {
        case .controlPlane(let control, let tokenFile, let dataDir):
            return try await IdentityBootstrap.enrol(
                control: control, tokenFile: tokenFile, dataDir: dataDir, service: config.service,
                trustDomain: config.trustDomain, logger: logger)
        case .standalone(let paths, _):
            return try IdentityBootstrap.load(paths, service: config.service, trustDomain: config.trustDomain)
        }
    }

    /// Opens every listener (inbound, outbound, upstream binds, admin) and logs where they are bound.
    private func bindListeners(
        tls: TLSState, cache: EndpointCache, policy: SidecarPolicy, ready: NIOLockedValueBox<Bool>,
        telemetry: ExchangeTelemetry, drain: DrainGroup, group: MultiThreadedEventLoopGroup
    ) async throws -> (listeners: (data: [any Channel], admin: any Channel), advertise: HostPort) {
        let config = configuration
        let metrics = telemetry.metrics
        let inboundPools = PoolSet(
            group: group, connector: PlainUpstreamConnector(wire: config.appProtocol == .http2 ? .http2 : .http1))
        let outbound = OutboundParts(
            cache: cache, tls: tls, policy: policy,
            balancers: PerEventLoop(group: group) { [logger] in
                Balancers(eventLoop: $0, trustDomain: config.trustDomain) { service, endpoint, length in
                    metrics.ejected(service.value)
                    logger.warning(
                        "endpoint ejected after consecutive failures",
                        metadata: [
                            "service": "\(service)", "endpoint": "\(endpoint)",
                            "for_ms": "\(length.nanoseconds / 1_000_000)",
                        ])
                }
            },
            http1Pools: PoolSet(
                group: group, connector: MTLSUpstreamConnector(tls: tls, metrics: metrics, wire: .http1)),
            http2Pools: PoolSet(group: group, connector: MTLSUpstreamConnector(tls: tls, metrics: metrics)),
            limits: config.httpLimits, metrics: metrics, telemetry: telemetry, drain: drain, logger: logger)
        let inbound = try await bindReporting("inbound", config.inbound) {
            try await InboundProxy.bind(
                config.inbound, tls: tls,
                router: InboundRouter(
                    app: config.app, policy: policy, rateLimiters: PerEventLoop(group: group) { _ in RateLimiter() },
                    metrics: metrics, logger: logger),
                appProtocol: config.appProtocol,
                pools: inboundPools, limits: config.httpLimits,
                gate: metrics.gate(.inbound, config.listenerLimits), metrics: metrics, telemetry: telemetry,
                drain: drain, logger: logger)
        }
        let outboundListener = try await bindReporting("outbound", config.outbound) {
            try await OutboundProxy.bind(
                config.outbound, gate: metrics.gate(.outbound, config.listenerLimits), outbound)
        }
        var listeners = [inbound, outboundListener]
        var bound: Logger.Metadata = [
            "inbound": "\(Self.hostPort(inbound))", "outbound": "\(Self.hostPort(outboundListener))",
        ]
        for (service, address) in config.upstreams {
            let channel = try await bindReporting("upstream \(service)", address) {
                try await OutboundProxy.bind(
                    address, fixedService: service, gate: metrics.gate(.upstream, config.listenerLimits), outbound)
            }
            listeners.append(channel)
            bound["upstream_\(service)"] = "\(Self.hostPort(channel))"
        }
        let boundSnapshot = NIOLockedValueBox<[String: String]>([:])
        let admin = try await bindReporting("admin", config.admin) {
            var adminLimits = ListenerLimits.admin
            adminLimits.handshakeTimeout = config.listenerLimits.handshakeTimeout
            return try await Listener.bind(config.admin, group: group, gate: metrics.gate(.admin, adminLimits)) {
                channel in
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(
                    AdminHandler(
                        tls: tls, ready: ready, metrics: metrics,
                        describe: {
                            AdminConfigView.json(
                                config, cache: cache, policy: policy.current,
                                bound: boundSnapshot.withLockedValue { $0 }, inbound: policy.snapshot.inbound)
                        }, policyUnavailable: { policy.unavailable }, policyVersion: { policy.current.version }))
            }
        }
        bound["admin"] = "\(Self.hostPort(admin))"
        let inboundBound = Self.hostPort(inbound)
        let advertise =
            config.advertise
            ?? HostPort(host: config.inbound.isWildcard ? "127.0.0.1" : inboundBound.host, port: inboundBound.port)
        if config.advertise == nil && config.inbound.isWildcard {
            logger.warning(
                "inbound listens on a wildcard address; advertising 127.0.0.1 — set --advertise for peers on other hosts"
            )
        }
        bound["advertise"] = "\(advertise)"
        logger.notice("sidecar listening", metadata: bound)
        boundSnapshot.withLockedValue { snapshot in
            for (key, value) in bound { snapshot[key] = "\(value)" }
        }
        return ((listeners, admin), advertise)
    }

    private func bindReporting(_ what: String, _ address: HostPort, _ bind: () async throws -> any Channel) async throws
        -> any Channel
    {
        do { return try await bind() } catch {
            throw MeshError(.invalidAddress, "cannot listen for \(what) on \(address): \(error)")
        }
    }

    static func hostPort(_ channel: any Channel) -> HostPort {
        HostPort(host: channel.localAddress?.ipAddress ?? "?", port: channel.localAddress?.port ?? 0)
    }
}
