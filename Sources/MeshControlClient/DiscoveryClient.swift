import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import MeshCore
import MeshIdentity

/// An endpoint of a destination, as the sidecar uses it.
public struct DiscoveredEndpoint: Hashable, Sendable {
    public let address: HostPort
    public let identity: SPIFFEID
    /// Labels the instance registered with (its protocol, subset labels).
    public let labels: [String: String]

    public init(address: HostPort, identity: SPIFFEID, labels: [String: String] = [:]) {
        self.address = address
        self.identity = identity
        self.labels = labels
    }
}

/// The endpoints of a service at one revision; `known` is false for a service never registered.
public struct DiscoveredService: Sendable, Equatable {
    public let service: ServiceName
    public let known: Bool
    public let endpoints: [DiscoveredEndpoint]
    public let revision: UInt64

    public init(service: ServiceName, known: Bool, endpoints: [DiscoveredEndpoint], revision: UInt64) {
        self.service = service
        self.known = known
        self.endpoints = endpoints
        self.revision = revision
    }
}

/// Registration and watches, with the caller's workload certificate.
public enum DiscoveryClient {
    /// Registers or renews this instance with its app's health; returns the lease (renew well before it ends).
    @discardableResult
    public static func register(
        session: ControlPlaneSession, service: ServiceName, advertise: HostPort,
        labels: [String: String] = [:], healthy: Bool = true
    ) async throws -> Duration {
        var request = Meshwork_V1_RegisterRequest()
        request.service = service.value
        request.endpoint = endpoint(advertise)
        request.endpoint.labels = labels
        request.health = healthy ? .serving : .notServing
        let response = try await session.call(timeout: .seconds(10)) { [request] c in
            try await Meshwork_V1_Discovery.Client(wrapping: c).register(request)
        }
        return .seconds(max(1, Int(response.leaseSeconds)))
    }

    public static func deregister(session: ControlPlaneSession, service: ServiceName, advertise: HostPort)
        async throws
    {
        var request = Meshwork_V1_DeregisterRequest()
        request.service = service.value
        request.endpoint = endpoint(advertise)
        _ = try await session.call(timeout: .seconds(5)) { [request] c in
            try await Meshwork_V1_Discovery.Client(wrapping: c).deregister(request)
        }
    }

    /// Streams snapshots of `service` to `onUpdate` until the stream ends or the task is cancelled.
    /// Endpoints whose identity is not a SPIFFE ID are dropped (the control plane never sends them).
    public static func watch(
        session: ControlPlaneSession, service: ServiceName,
        onUpdate: @Sendable @escaping (DiscoveredService) async -> Void
    ) async throws {
        var request = Meshwork_V1_WatchRequest()
        request.service = service.value
        do {
            try await Meshwork_V1_Discovery.Client(wrapping: try session.client()).watch(request) { response in
                for try await set in response.messages {
                    let endpoints = set.endpoints.compactMap { e -> DiscoveredEndpoint? in
                        guard let id = try? SPIFFEID(parsing: e.identity), (1...65535).contains(e.port) else {
                            return nil
                        }
                        return DiscoveredEndpoint(
                            address: HostPort(host: e.host, port: Int(e.port)), identity: id, labels: e.labels)
                    }
                    await onUpdate(
                        DiscoveredService(
                            service: service, known: set.known, endpoints: endpoints, revision: set.revision))
                }
            }
        } catch let error as RPCError {
            throw ControlPlaneError(error)
        }
    }

    static func endpoint(_ address: HostPort) -> Meshwork_V1_Endpoint {
        var endpoint = Meshwork_V1_Endpoint()
        endpoint.host = address.host
        endpoint.port = UInt32(address.port)
        return endpoint
    }
}
