import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshIdentity
import NIOConcurrencyHelpers
import NIOCore
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
        let config = configuration
        let identity = try await obtainIdentity()
        let tls = try TLSState(identity: identity, trustDomain: config.trustDomain)
        logger.notice(
            "identity ready",
            metadata: [
                "identity": "\(identity.spiffeID)", "serial": "\(identity.serialHex)",
                "not_after": "\(identity.notAfter)",
            ])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let cache = EndpointCache()
        let ready = NIOLockedValueBox(false)
        let inboundPools = PoolSet(group: group, connector: PlainUpstreamConnector())
        let outboundPools = PoolSet(group: group, connector: MTLSUpstreamConnector(tls: tls))

        let inbound = try await bindReporting("inbound", config.inbound) {
            try await InboundProxy.bind(
                config.inbound, tls: tls, router: InboundRouter(app: config.app), pools: inboundPools,
                limits: config.httpLimits, logger: logger)
        }
        let outbound = try await bindReporting("outbound", config.outbound) {
            try await OutboundProxy.bind(
                config.outbound, router: OutboundRouter(cache: cache, trustDomain: config.trustDomain),
                pools: outboundPools, limits: config.httpLimits, logger: logger)
        }
        var listeners = [inbound, outbound]
        var bound: Logger.Metadata = ["inbound": "\(Self.hostPort(inbound))", "outbound": "\(Self.hostPort(outbound))"]
        for (service, address) in config.upstreams {
            let channel = try await bindReporting("upstream \(service)", address) {
                try await OutboundProxy.bind(
                    address,
                    router: OutboundRouter(cache: cache, trustDomain: config.trustDomain, fixedService: service),
                    pools: outboundPools, limits: config.httpLimits, logger: logger)
            }
            listeners.append(channel)
            bound["upstream_\(service)"] = "\(Self.hostPort(channel))"
        }
        let admin = try await bindReporting("admin", config.admin) {
            try await Listener.bind(config.admin, group: group) { channel in
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(AdminHandler(tls: tls, ready: ready))
            }
        }
        listeners.append(admin)
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

        let services: [any Service] = [
            ListenerService(listeners: listeners, cache: cache),
            CertificateRenewalService(tls: tls, control: config.control, dataDir: config.dataDir, logger: logger),
            DiscoveryWatchService(cache: cache, tls: tls, control: config.control, logger: logger),
            RegistrationService(
                tls: tls, control: config.control, service: config.service, advertise: advertise, ready: ready,
                logger: logger),
        ]
        let serviceGroup = ServiceGroup(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await serviceGroup.run()
        try? await group.shutdownGracefully()
    }

    /// The identity on disk if it is still valid, else a new one obtained with the join token.
    func obtainIdentity() async throws -> WorkloadIdentity {
        let config = configuration
        if let stored = try IdentityFiles.load(dataDir: config.dataDir) {
            if stored.spiffeID != .workload(config.service, in: config.trustDomain) {
                throw MeshError(
                    .invalidConfiguration,
                    "\(config.dataDir) holds the identity \(stored.spiffeID), not that of service \(config.service); use a data directory per service"
                )
            }
            if stored.notAfter > Date() {
                logger.info("using identity from disk", metadata: ["not_after": "\(stored.notAfter)"])
                return stored
            }
            logger.warning("identity on disk has expired; enrolling again with the join token")
        }
        guard let text = try SecureFiles.readString(config.tokenFile) else {
            throw MeshError(
                .invalidConfiguration,
                "--token-file \(config.tokenFile) does not exist and \(config.dataDir) holds no valid identity: create a token with meshctl token create --service \(config.service)"
            )
        }
        let token = try JoinToken(parsing: text)
        do {
            let identity = try await Enrolment.certify(
                control: config.control, token: token, service: config.service, trustDomain: config.trustDomain)
            try IdentityFiles.save(identity, dataDir: config.dataDir)
            return identity
        } catch let error as ControlPlaneError {
            throw MeshError(
                .invalidToken,
                "enrolment with \(config.control) refused: \(error.message)\(error.reason.map { " [\($0)]" } ?? "")")
        }
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
