import Foundation
import MeshCore
import MeshIdentity
import MeshTLS
import NIOConcurrencyHelpers
import NIOSSL

/// The current identity and the TLS contexts built from it — once per rotation, never per connection.
/// Listeners and connectors read `current` at each new connection; live connections keep their context.
final class TLSState: Sendable {
    struct Snapshot: Sendable {
        let identity: WorkloadIdentity
        /// Inbound: offers `h2` and `http/1.1` by ALPN (a relay client offers neither, and gets bytes).
        let serverContext: NIOSSLContext
        /// Outbound HTTP: offers `h2`, then `http/1.1`.
        let clientContext: NIOSSLContext
        /// Outbound HTTP/1.1 only: requests that upgrade the connection (WebSocket) need an HTTP/1.1 hop.
        let http1ClientContext: NIOSSLContext
        /// Outbound opaque TCP: no ALPN, so the peer never mistakes the relay for HTTP.
        let relayClientContext: NIOSSLContext
        let renewAt: Date
    }

    private let box: NIOLockedValueBox<Snapshot>
    let trustDomain: TrustDomain

    init(identity: WorkloadIdentity, trustDomain: TrustDomain) throws {
        self.trustDomain = trustDomain
        box = NIOLockedValueBox(try Self.snapshot(identity))
    }

    var current: Snapshot { box.withLockedValue { $0 } }

    func update(_ identity: WorkloadIdentity) throws {
        let snapshot = try Self.snapshot(identity)
        box.withLockedValue { $0 = snapshot }
    }

    /// Verification reads the bundle at handshake time, so a new root applies to the next handshake.
    var verifier: PeerVerifier {
        PeerVerifier(trustDomain: trustDomain, bundle: { [box] in box.withLockedValue { $0.identity.bundle } })
    }

    func verifier(onFailure: @escaping @Sendable (PeerVerificationFailure) -> Void) -> PeerVerifier {
        PeerVerifier(
            trustDomain: trustDomain, bundle: { [box] in box.withLockedValue { $0.identity.bundle } },
            onFailure: onFailure)
    }

    /// What the hop between sidecars may speak, in order of preference.
    static let alpn = ["h2", "http/1.1"]

    private static func snapshot(_ identity: WorkloadIdentity) throws -> Snapshot {
        let server = try MeshTLSConfiguration.makeServerConfigurationWithMTLS(
            chain: identity.chain, key: identity.key, roots: identity.bundle.roots, alpn: alpn)
        let client = try MeshTLSConfiguration.makeClientConfigurationWithMTLS(
            chain: identity.chain, key: identity.key, roots: identity.bundle.roots, alpn: alpn)
        let http1 = try MeshTLSConfiguration.makeClientConfigurationWithMTLS(
            chain: identity.chain, key: identity.key, roots: identity.bundle.roots, alpn: ["http/1.1"])
        let relay = try MeshTLSConfiguration.makeClientConfigurationWithMTLS(
            chain: identity.chain, key: identity.key, roots: identity.bundle.roots)
        return Snapshot(
            identity: identity, serverContext: try NIOSSLContext(configuration: server),
            clientContext: try NIOSSLContext(configuration: client),
            http1ClientContext: try NIOSSLContext(configuration: http1),
            relayClientContext: try NIOSSLContext(configuration: relay),
            renewAt: identity.renewalTime(now: Date(), unit: Double.random(in: 0...1)))
    }
}
