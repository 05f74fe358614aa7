import Crypto
import MeshIdentity
import NIOSSL
import X509

/// The one factory of TLS settings for every mesh hop — sidecar inbound and outbound, the control plane's
/// listener and every client of it: TLS 1.3 only, certificates required both ways, hostname checks off
/// (SPIFFE IDs live in URI SANs and are checked by `PeerVerifier`'s callback). Nothing else in Meshwork builds
/// a `TLSConfiguration`.
public enum MeshTLSConfiguration {
    /// Server side of an mTLS hop (sidecar inbound, control plane API). `roots`: the CAs a client chain may end in.
    public static func makeServerConfigurationWithMTLS(
        chain: [Certificate],
        key: P256.Signing.PrivateKey,
        roots: [Certificate],
        alpn: [String] = []
    ) throws -> TLSConfiguration {
        var config = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: try chain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der)) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)),
            trustRoots: .certificates(try roots.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        )
        config.minimumTLSVersion = .tlsv13
        config.applicationProtocols = alpn
        return config
    }

    /// Client side of an mTLS hop (sidecar outbound, control plane clients). `roots` may be empty when the
    /// verification callback decides alone (first contact, against a CA pin): never the system's CA bundle.
    public static func makeClientConfigurationWithMTLS(
        chain: [Certificate],
        key: P256.Signing.PrivateKey,
        roots: [Certificate],
        alpn: [String] = []
    ) throws -> TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv13
        config.certificateVerification = .noHostnameVerification
        config.certificateChain = try chain.map {
            .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der))
        }
        config.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        config.trustRoots = .certificates(try roots.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        config.applicationProtocols = alpn
        return config
    }
}
