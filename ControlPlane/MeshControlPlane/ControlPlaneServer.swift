import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshCore
import MeshFrontDoor
import MeshIdentity
import MeshTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ServiceLifecycle
import X509

/// `mesh-control serve`: loads (or on first start creates) the CA and admin credential, then serves the
/// Identity, Discovery, Admin and Policy APIs over mTLS until SIGTERM. Policy versions live in DATA/meshwork.db.
public struct ControlPlaneServer: Service {
    let configuration: ControlPlaneConfiguration
    let logger: Logger
    /// Told the bound address once the listener is up (tests, and the startup log line).
    let onListening: @Sendable (HostPort) -> Void

    public init(
        configuration: ControlPlaneConfiguration, logger: Logger,
        onListening: @escaping @Sendable (HostPort) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
    }

    /// Startup failures (corrupt or world-readable CA key, unusable data dir) throw `MeshError` before
    /// any socket opens.
    public func prepare() throws -> PreparedControlPlane {
        let dir = configuration.dataDir
        try SecureFiles.makeDirectory(dir)
        let (ca, created) = try CAFiles.loadOrCreate(dataDir: dir, trustDomain: configuration.trustDomain)
        if created { logger.notice("created root CA", metadata: ["pin": "\(ca.pin)", "dir": "\(dir)/ca"]) }
        let tokens = try TokenRegistry(path: dir + "/tokens.json", caPin: ca.pin)
        let adminKey = try AdminFiles.loadOrCreateKey(dataDir: dir)
        return PreparedControlPlane(ca: ca, tokens: tokens, adminKey: adminKey)
    }

    public func run() async throws {
        let prepared = try prepare()
        try await serve(prepared)
    }

    func serve(_ prepared: PreparedControlPlane) async throws {
        let ca = prepared.ca
        let td = configuration.trustDomain
        // The serving certificate is minted per start; its chain includes the root so that a client
        // holding only the CA pin (from a join token) can check it.
        let serverKey = P256.Signing.PrivateKey()
        let serverCert = try ca.issue(
            identity: .controlPlane(in: td), publicKey: .init(serverKey.publicKey), lifetime: .seconds(365 * 86400))
        let verifier = PeerVerifier(trustDomain: td, bundle: { ca.bundle })
        let tally = EventTally<FrontDoorEvent>("front door closed connections")
        let frontDoor = ConnectionGate(listener: "control", limits: configuration.listenerLimits) { event, _ in
            tally.record(event)
        }
        let refusals = EventTally<RegistrationRefusal.Reason>("registrations refused")
        let transport = try Self.transport(
            configuration.listen,
            tls: try NIOSSLContext(
                configuration: MeshTLSConfiguration.makeServerConfigurationWithMTLS(
                    chain: [serverCert, ca.root], key: serverKey, roots: [ca.root], alpn: ["h2"])),
            verify: verifier.callback(.workloadOrEnrolment), gate: frontDoor)
        let registry = EndpointRegistry(
            leaseTTL: configuration.leaseTTL,
            limits: .init(
                maxPerService: configuration.maxInstancesPerService,
                maxPerConnection: configuration.maxInstancesPerConnection))
        let metrics = ControlPlaneMetrics()
        let ready = NIOLockedValueBox(false)
        let store = try await SQLitePolicyStore.open(path: configuration.dataDir + "/meshwork.db", logger: logger)
        let policies: PolicyRegistry
        let admin: any Channel
        do {
            policies = try await PolicyRegistry(store: TimedPolicyStore(store: store, metrics: metrics), logger: logger)
            do { admin = try await ControlAdminServer.bind(configuration.admin, metrics: metrics, ready: ready) } catch
            {
                throw MeshError(.invalidAddress, "cannot listen for admin on \(configuration.admin): \(error)")
            }
        } catch {
            try? await store.close()
            throw error
        }
        let tracker = ConvergenceTracker(metrics: metrics)
        let gate = AdmissionGate(
            ratePerSecond: configuration.admissionRate, burst: configuration.admissionRate, metrics: metrics)
        let policyVersion = await policies.version
        logger.info("policy store open", metadata: ["version": "\(policyVersion)"])
        let server = GRPCServer(
            transport: transport,
            services: [
                IdentityAPI(
                    ca: ca, tokens: prepared.tokens, leafLifetime: configuration.certificateLifetime, metrics: metrics,
                    logger: logger),
                DiscoveryAPI(registry: registry, gate: gate, refusals: refusals, trustDomain: td, logger: logger),
                AdminAPI(tokens: prepared.tokens, trustDomain: td, logger: logger),
                PolicyAPI(registry: policies, tracker: tracker, trustDomain: td, logger: logger),
                PolicyPushAPI(
                    registry: policies, tracker: tracker, gate: gate, metrics: metrics, trustDomain: td, logger: logger),
            ]
        )
        metrics.policyVersion.set(Int64(policyVersion))
        let adminBound = admin.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "\(configuration.admin)"
        do {
            try await serveUntilShutdown(
                server: server, transport: transport, prepared: prepared, registry: registry,
                tallies: (frontDoor, tally, refusals),
                admin: (adminBound, ready, metrics))
        } catch {
            try? await admin.close()
            try? await store.close()
            throw error
        }
        try? await admin.close()
        try? await store.close()
    }

    private func serveUntilShutdown(
        server: GRPCServer<HTTP2ServerTransport.Posix>, transport: HTTP2ServerTransport.Posix,
        prepared: PreparedControlPlane, registry: EndpointRegistry,
        tallies: (
            gate: ConnectionGate, frontDoor: EventTally<FrontDoorEvent>,
            refusals: EventTally<RegistrationRefusal.Reason>
        ),
        admin: (address: String, ready: NIOLockedValueBox<Bool>, metrics: ControlPlaneMetrics)
    ) async throws {
        let ca = prepared.ca
        let td = configuration.trustDomain
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await withGracefulShutdownHandler {
                    try await server.serve()
                } onGracefulShutdown: {
                    admin.ready.withLockedValue { $0 = false }
                    server.beginGracefulShutdown()
                }
            }
            // Lease keeper: instances whose sidecar stopped renewing vanish within a second of their lease.
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(1))
                        let removed = await registry.expire()
                        admin.metrics.registeredInstances.set(Int64(await registry.instanceCount))
                        if removed > 0 { logger.info("leases lapsed", metadata: ["instances": "\(removed)"]) }
                        tallies.frontDoor.logSinceLast(
                            logger,
                            metadata: [
                                "open": "\(tallies.gate.openConnections)",
                                "max_connections": "\(tallies.gate.limits.maxConnections)",
                            ])
                        tallies.refusals.logSinceLast(logger)
                        MemoryAfterBursts.reclaim([tallies.gate])
                    }
                }
            }
            let bound: HostPort
            do {
                let address = try await transport.listeningAddress
                guard let v4 = address.ipv4 else {
                    throw MeshError(.invalidAddress, "listener bound to a non-IPv4 address")
                }
                bound = HostPort(host: v4.host, port: v4.port)
            } catch {
                throw MeshError(.invalidAddress, "cannot listen on \(configuration.listen): \(error)")
            }
            try AdminFiles.writeCredential(
                dataDir: configuration.dataDir, server: bound, ca: ca, key: prepared.adminKey, logger: logger)
            admin.ready.withLockedValue { $0 = true }
            logger.notice(
                "control plane listening",
                metadata: ["address": "\(bound)", "admin": "\(admin.address)", "trust_domain": "\(td)"])
            onListening(bound)
        }
    }
}

extension ControlPlaneServer {
    /// The gRPC listener behind the front door. gRPC is told the transport is plaintext; TLS (from the mesh's one
    /// factory: 1.3 only, client certificates required) is our handler, placed first on every accepted connection
    /// with the front door's guard right after it, so the connection cap, the handshake and idle timeouts and the
    /// backlog hold before gRPC sees a byte. The peer's verified chain still reaches each RPC's context (gRPC reads
    /// it from the TLS handler in the pipeline).
    static func transport(
        _ address: HostPort, tls: NIOSSLContext, verify: @escaping PeerVerifier.Callback, gate: ConnectionGate
    ) throws -> HTTP2ServerTransport.Posix {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = APILimits.maxMessageBytes
        config.channelDebuggingCallbacks.onBindTCPListener = { channel in
            FrontDoor.configureListener(channel, gate: gate)
        }
        config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(
                    [
                        NIOSSLServerHandler(context: tls, customVerificationCallbackWithMetadata: verify),
                        FrontDoor.guardHandler(gate: gate, tls: true),
                    ],
                    position: .first)
            }
        }
        return HTTP2ServerTransport.Posix(
            address: .ipv4(host: address.host, port: address.port), transportSecurity: .plaintext, config: config)
    }
}

/// State loaded before the listener opens.
public struct PreparedControlPlane: Sendable {
    let ca: CertificateAuthority
    let tokens: TokenRegistry
    let adminKey: P256.Signing.PrivateKey
}
