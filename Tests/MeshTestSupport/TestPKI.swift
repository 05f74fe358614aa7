import Crypto
import Foundation
import MeshCore
import MeshIdentity
import X509

/// A named test CA that issues SPIFFE leaves, at a fixed or current clock.
public struct TestPKI: Sendable {
    public let root: Certificate
    public let key: P256.Signing.PrivateKey
    public let trustDomain: TrustDomain

    public init(name: String = "test CA", trustDomain: TrustDomain = .default, now: Date = Date()) throws {
        let key = P256.Signing.PrivateKey()
        self.key = key
        self.trustDomain = trustDomain
        let dn = try DistinguishedName { CommonName(name) }
        root = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(86400 * 30),
            issuer: dn, subject: dn, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
    }

    public var bundle: TrustBundle { try! TrustBundle(roots: [root]) }

    /// A workload identity for `uri` (e.g. spiffe://mesh.local/svc/orders), valid from `now - 60s` for `lifetime`.
    public func identity(_ uri: String, now: Date = Date(), lifetime: TimeInterval = 3600) throws -> WorkloadIdentity {
        let leafKey = P256.Signing.PrivateKey()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(lifetime),
            issuer: root.subject, subject: DistinguishedName(), signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                Critical(SubjectAlternativeNames([.uniformResourceIdentifier(uri)]))
            },
            issuerPrivateKey: .init(key))
        return try WorkloadIdentity(key: leafKey, chain: [leaf], bundle: bundle)
    }
}
