import MeshCore

/// How a service speaks; the sidecar picks its codecs from this rather than guessing.
public enum ServiceProtocol: String, Sendable, CaseIterable {
    case http, http2, grpc, tcp
}

/// A validated `kind: Service` document. Only `PolicyLoader` makes these.
public struct ServicePolicy: Sendable, Equatable {
    public let name: ServiceName
    public let `protocol`: ServiceProtocol
    public let ports: [Port]

    public struct Port: Sendable, Equatable {
        public let name: String?
        public let number: Int
    }

    init(name: ServiceName, protocol: ServiceProtocol, ports: [Port]) {
        self.name = name
        self.protocol = `protocol`
        self.ports = ports
    }
}
