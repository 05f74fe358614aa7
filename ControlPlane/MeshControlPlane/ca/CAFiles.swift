import Crypto
import Foundation
import MeshCore
import MeshIdentity
import X509

/// The CA on disk: `DATA/ca/root.pem` and `DATA/ca/root.key` (0600). The first start creates them; later
/// starts refuse a key that others can read or that does not parse, rather than minting a new CA.
enum CAFiles {
    static func loadOrCreate(dataDir: String, trustDomain: TrustDomain) throws -> (CertificateAuthority, created: Bool)
    {
        let dir = dataDir + "/ca"
        let certPath = dir + "/root.pem"
        let keyPath = dir + "/root.key"
        let haveCert = SecureFiles.exists(certPath)
        let haveKey = SecureFiles.exists(keyPath)
        if !haveCert && !haveKey {
            try SecureFiles.makeDirectory(dir)
            let ca = try CertificateAuthority.generate(trustDomain: trustDomain)
            try SecureFiles.write(ca.key.pemRepresentation, to: keyPath, mode: 0o600)
            try SecureFiles.write(ca.root.pemText, to: certPath, mode: 0o644)
            return (ca, true)
        }
        guard haveCert && haveKey else {
            throw MeshError(
                .invalidConfiguration,
                "\(haveCert ? keyPath : certPath) is missing but \(haveCert ? certPath : keyPath) exists; restore it from backup (refusing to create a new CA over a half-present one)"
            )
        }
        try SecureFiles.requirePrivate(keyPath)
        let keyPEM = try SecureFiles.readString(keyPath) ?? ""
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM) } catch {
            throw MeshError(
                .invalidCertificate,
                "\(keyPath) is not a valid P-256 private key in PEM (corrupt?): restore it from backup")
        }
        let certs = try [Certificate](pemBundle: try SecureFiles.readString(certPath) ?? "", what: certPath)
        let root = certs[0]
        if let names = try? root.extensions.subjectAlternativeNames,
            let uri = names.compactMap({ (n: GeneralName) -> String? in
                if case .uniformResourceIdentifier(let u) = n { return u }
                return nil
            }).first, uri != "spiffe://\(trustDomain.name)"
        {
            throw MeshError(
                .invalidConfiguration,
                "the CA in \(certPath) belongs to \(uri), not trust domain \(trustDomain); pass --trust-domain to match it"
            )
        }
        do {
            return (try CertificateAuthority(root: root, key: key, trustDomain: trustDomain), false)
        } catch {
            throw MeshError(.invalidCertificate, "\(certPath) does not match \(keyPath): \(error.message)")
        }
    }
}
