import MeshCore
import MeshPolicy
import NIOCore

/// One policy version as the data path reads it: immutable, shared, read once per request.
final class PolicySnapshot: Sendable {
    let version: UInt64
    let inbound: InboundPolicy
    private let destinations: [ServiceName: DestinationPolicy]

    private init(version: UInt64, inbound: InboundPolicy, destinations: [ServiceName: DestinationPolicy]) {
        self.version = version
        self.inbound = inbound
        self.destinations = destinations
    }

    /// The policy for calling `service`: its compiled one, or the defaults when the version names none.
    func destination(_ service: ServiceName) -> DestinationPolicy {
        destinations[service] ?? .defaults
    }

    /// Compiles the documents of one version for the sidecar of `service`; throws naming the document that
    /// cannot be compiled.
    static func compile(version: UInt64, documents: [PolicyDocument], for service: ServiceName) throws(MeshError)
        -> PolicySnapshot
    {
        var services: [ServiceName: ServicePolicy] = [:]
        var traffic: [ServiceName: TrafficPolicy.Spec] = [:]
        var authorization: AuthorizationPolicy.Spec?
        for document in documents {
            switch document {
            case .service(let s): services[s.name] = s
            case .traffic(let t):
                guard let target = try? ServiceName(t.spec.service) else {
                    throw MeshError(.invalidPolicy, "TrafficPolicy/\(t.name): spec.service is not a service name")
                }
                traffic[target] = t.spec
            case .authorization(let a) where a.spec.service == service.value: authorization = a.spec
            case .authorization: break
            }
        }
        var destinations: [ServiceName: DestinationPolicy] = [:]
        for name in Set(services.keys).union(traffic.keys) where name != service || traffic[name] != nil {
            do {
                destinations[name] = try DestinationPolicy(declared: services[name], traffic: traffic[name])
            } catch {
                throw MeshError(
                    .invalidPolicy, "TrafficPolicy for \(name): \((error as? MeshError)?.message ?? "\(error)")")
            }
        }
        return PolicySnapshot(
            version: version,
            inbound: InboundPolicy(
                service: service, declared: services[service], authorization: authorization,
                rateLimit: traffic[service]?.rateLimit),
            destinations: destinations)
    }

    /// Version 0: no policy yet. `failClosed`: the sidecar ran an AuthorizationPolicy before and refuses inbound
    /// traffic until a version arrives.
    static func empty(for service: ServiceName, failClosed: Bool = false) -> PolicySnapshot {
        PolicySnapshot(
            version: 0,
            inbound: failClosed
                ? .unavailable(service: service)
                : InboundPolicy(service: service, declared: nil, authorization: nil, rateLimit: nil),
            destinations: [:])
    }
}
