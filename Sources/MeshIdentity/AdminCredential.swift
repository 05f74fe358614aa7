import Crypto
import MeshCore
import X509

/// The operator credential in `DATA/admin/meshctl.yaml`: where the control plane listens, the CA (and
/// its pin) to verify it, and the admin client certificate and key. Written 0600.
public struct AdminCredential: Sendable {
    public var server: String
    public var trustDomain: TrustDomain
    public var ca: Certificate
    public var certificate: Certificate
    public var key: P256.Signing.PrivateKey

    public init(
        server: String, trustDomain: TrustDomain, ca: Certificate, certificate: Certificate,
        key: P256.Signing.PrivateKey
    ) {
        self.server = server
        self.trustDomain = trustDomain
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }

    /// The YAML text meshctl reads (`meshctl --config FILE` or `$MESHCTL_CONFIG`).
    public var yamlText: String {
        func block(_ text: String) -> String {
            text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
        }
        return """
            # Meshwork admin credential: whoever holds this file administers the mesh. Keep it 0600.
            server: \(server)
            trustDomain: \(trustDomain)
            caPin: \(CAPin(of: ca))
            ca: |
            \(block(ca.pemText))
            certificate: |
            \(block(certificate.pemText))
            key: |
            \(block(key.pemRepresentation))

            """
    }
}
