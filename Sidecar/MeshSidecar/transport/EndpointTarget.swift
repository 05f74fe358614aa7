import MeshCore

/// One concrete upstream: an address, and the identity it must prove (nil for the local app, reached
/// over plain loopback TCP).
struct EndpointTarget: Hashable, Sendable, CustomStringConvertible {
    let address: HostPort
    let identity: SPIFFEID?

    var description: String { identity.map { "\(address) (\($0))" } ?? "\(address)" }
}
