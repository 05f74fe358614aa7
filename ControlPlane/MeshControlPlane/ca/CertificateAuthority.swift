import Crypto
import Foundation
import MeshCore
import MeshIdentity
import SwiftASN1
import X509

/// The mesh's root CA: signs workload, control-plane and admin certificates. The key never leaves the
/// control plane's data directory (mode 0600).
public struct CertificateAuthority: Sendable {
    public let root: Certificate
    let key: P256.Signing.PrivateKey
    public let trustDomain: TrustDomain

    public init(root: Certificate, key: P256.Signing.PrivateKey, trustDomain: TrustDomain) throws(MeshError) {
        guard root.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw MeshError(.invalidCertificate, "CA certificate does not match the CA key")
        }
        self.root = root
        self.key = key
        self.trustDomain = trustDomain
    }

    /// A new self-signed root, valid 10 years, path length 0 (it signs leaves only).
    public static func generate(trustDomain: TrustDomain, now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Meshwork")
            CommonName("Meshwork root CA \(trustDomain.name)")
        }
        let root = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
                SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(trustDomain.name)")])
            },
            issuerPrivateKey: .init(key)
        )
        return try CertificateAuthority(root: root, key: key, trustDomain: trustDomain)
    }

    public var pin: CAPin { CAPin(of: root) }
    public var bundle: TrustBundle { try! TrustBundle(roots: [root]) }

    /// Signs a leaf whose only identity is `identity` in a critical URI SAN, valid for `lifetime` (never
    /// beyond the root) and backdated for clock skew by a minute or a tenth of the lifetime, whichever is
    /// less — so the 60–90 % renewal window stays ahead of the holder even for short-lived certificates.
    public func issue(
        identity: SPIFFEID,
        publicKey: Certificate.PublicKey,
        lifetime: Duration,
        now: Date = Date()
    ) throws -> Certificate {
        let notAfter = min(now.addingTimeInterval(TimeInterval(lifetime.wholeSeconds)), root.notValidAfter)
        let skew = min(60, TimeInterval(lifetime.wholeSeconds) / 10)
        return try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-skew),
            notValidAfter: notAfter,
            issuer: root.subject,
            subject: DistinguishedName(),
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: try root.extensions.subjectKeyIdentifier?.keyIdentifier)
                Critical(SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)]))
            },
            issuerPrivateKey: .init(key)
        )
    }
}
