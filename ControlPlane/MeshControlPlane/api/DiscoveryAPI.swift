import GRPCCore
import Logging
import MeshAPI
import MeshCore
import ServiceLifecycle

/// Registration is allowed only for the caller's own certified service; watching is open to any workload.
struct DiscoveryAPI: Meshwork_V1_Discovery.SimpleServiceProtocol {
    let registry: EndpointRegistry
    /// Watches are what every sidecar reopens after an outage: they queue here in a storm.
    let gate: AdmissionGate
    /// Refused registrations, logged as counts once a second (a flood is a line, not a thousand).
    let refusals: EventTally<RegistrationRefusal.Reason>
    let trustDomain: TrustDomain
    let logger: Logger

    func register(request: Meshwork_V1_RegisterRequest, context: ServerContext) async throws
        -> Meshwork_V1_RegisterResponse
    {
        let (id, service) = try CallerIdentity(context).requireWorkload(trustDomain)
        guard request.service == service.value else {
            throw RPCError(
                code: .permissionDenied,
                message: "caller \(id) may register only service \"\(service)\", not \(echoed(request.service))")
        }
        let healthy = request.health != .notServing
        let endpoint: HostPort
        do {
            endpoint = try Self.endpoint(request.endpoint)
            try await registry.register(
                service,
                RegisteredEndpoint(
                    host: endpoint.host, port: endpoint.port, identity: id.uri, labels: request.endpoint.labels),
                healthy: healthy, registrant: context.remotePeer)
        } catch {
            refusals.record(error.reason)
            throw error.rpcError
        }
        logger.debug(
            "instance registered",
            metadata: ["service": "\(service)", "endpoint": "\(endpoint)", "healthy": "\(healthy)"])
        var response = Meshwork_V1_RegisterResponse()
        response.instanceID = "\(service)@\(endpoint)"
        response.leaseSeconds = UInt32(registry.leaseTTL.components.seconds)
        return response
    }

    func deregister(request: Meshwork_V1_DeregisterRequest, context: ServerContext) async throws
        -> Meshwork_V1_DeregisterResponse
    {
        let (id, service) = try CallerIdentity(context).requireWorkload(trustDomain)
        guard request.service == service.value else {
            throw RPCError(code: .permissionDenied, message: "caller \(id) may deregister only service \"\(service)\"")
        }
        let endpoint: HostPort
        do { endpoint = try Self.endpoint(request.endpoint) } catch { throw error.rpcError }
        await registry.deregister(service, key: "\(endpoint.host):\(endpoint.port)")
        logger.info("instance deregistered", metadata: ["service": "\(service)", "endpoint": "\(endpoint)"])
        return Meshwork_V1_DeregisterResponse()
    }

    func watch(request: Meshwork_V1_WatchRequest, response: RPCWriter<Meshwork_V1_EndpointSet>, context: ServerContext)
        async throws
    {
        _ = try CallerIdentity(context).requireWorkload(trustDomain)
        let service: ServiceName
        do { service = try ServiceName(request.service) } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        // Streams end when the control plane drains, so SIGTERM is not held up by open watches;
        // sidecars keep their last snapshot and reconnect.
        await gate.admit()
        let (id, updates) = await registry.watch(service)
        do {
            try await cancelWhenGracefulShutdown {
                try await Self.forward(updates, service: service, to: response)
            }
        } catch {
            await registry.unwatch(service, id)
            throw error
        }
        await registry.unwatch(service, id)
    }

    private static func forward(
        _ updates: AsyncStream<EndpointSnapshot>, service: ServiceName, to response: RPCWriter<Meshwork_V1_EndpointSet>
    ) async throws {
        for await snapshot in updates {
            var set = Meshwork_V1_EndpointSet()
            set.service = service.value
            set.known = snapshot.known
            set.revision = snapshot.revision
            set.endpoints = snapshot.endpoints.map { e in
                var out = Meshwork_V1_Endpoint()
                out.host = e.host
                out.port = UInt32(e.port)
                out.identity = e.identity
                out.labels = e.labels
                return out
            }
            try await response.write(set)
        }
    }

    private static func endpoint(_ e: Meshwork_V1_Endpoint) throws(RegistrationRefusal) -> HostPort {
        if let problem = EndpointHost.problem(e.host) {
            throw RegistrationRefusal(.invalidEndpoint, "endpoint \(problem)")
        }
        guard (1...65535).contains(e.port) else {
            throw RegistrationRefusal(.invalidEndpoint, "endpoint port must be 1...65535 (got \(e.port))")
        }
        // Labels travel to every watcher of the service in every snapshot: a few, and short.
        guard e.labels.count <= 16,
            e.labels.allSatisfy({ (1...128).contains($0.key.utf8.count) && $0.value.utf8.count <= 256 })
        else {
            throw RegistrationRefusal(
                .invalidEndpoint, "endpoint labels: at most 16, keys of 1...128 bytes, values of at most 256 bytes")
        }
        return HostPort(host: e.host, port: Int(e.port))
    }
}
