import Crypto
import MeshIdentity
import NIOSSL
import X509

/// The secure defaults for every mesh hop, in one place: TLS 1.3 only, certificates required both ways,
/// hostname checks off (SPIFFE IDs live in URI SANs and are checked by `PeerVerifier`).
public enum MeshTLSConfiguration {
    /// Server side of an mTLS hop (sidecar inbound, control plane API).
    public static func makeServerConfigurationWithMTLS(
        chain: [Certificate],
        key: P256.Signing.PrivateKey,
        bundle: TrustBundle,
        alpn: [String] = []
    ) throws -> TLSConfiguration {
        var config = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: try chain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der)) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)),
            trustRoots: .certificates(try bundle.roots.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        )
        config.minimumTLSVersion = .tlsv13
        config.applicationProtocols = alpn
        return config
    }

    /// Client side of an mTLS hop (sidecar outbound).
    public static func makeClientConfigurationWithMTLS(
        chain: [Certificate],
        key: P256.Signing.PrivateKey,
        bundle: TrustBundle,
        alpn: [String] = []
    ) throws -> TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.minimumTLSVersion = .tlsv13
        config.certificateVerification = .noHostnameVerification
        config.certificateChain = try chain.map {
            .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der))
        }
        config.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        config.trustRoots = .certificates(
            try bundle.roots.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        config.applicationProtocols = alpn
        return config
    }
}
