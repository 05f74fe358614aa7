import Crypto
import Foundation
import MeshCore
import MeshIdentity
import X509

/// The sidecar's identity on disk, so it can serve across a restart while the control plane is down:
/// `DATA/key.pem` (0600), `DATA/cert.pem` (chain), `DATA/bundle.pem`. Written key-last-renamed-first
/// is not needed: each file is replaced atomically and a mismatched pair is refused on load.
enum IdentityFiles {
    static func load(dataDir: String) throws(MeshError) -> WorkloadIdentity? {
        let keyPath = dataDir + "/key.pem"
        guard let keyPEM = try SecureFiles.readString(keyPath),
            let certPEM = try SecureFiles.readString(dataDir + "/cert.pem"),
            let bundlePEM = try SecureFiles.readString(dataDir + "/bundle.pem")
        else { return nil }
        try SecureFiles.requirePrivate(keyPath)
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM) } catch {
            throw MeshError(
                .invalidCertificate,
                "\(keyPath) is not a valid P-256 key; delete the data directory's key.pem, cert.pem and bundle.pem to enrol again"
            )
        }
        return try WorkloadIdentity(
            key: key, chain: try [Certificate](pemBundle: certPEM, what: dataDir + "/cert.pem"),
            bundle: try TrustBundle(pem: bundlePEM, what: dataDir + "/bundle.pem"))
    }

    static func save(_ identity: WorkloadIdentity, dataDir: String) throws(MeshError) {
        try SecureFiles.makeDirectory(dataDir)
        try SecureFiles.write(identity.bundle.pemText, to: dataDir + "/bundle.pem", mode: 0o644)
        try SecureFiles.write(identity.key.pemRepresentation, to: dataDir + "/key.pem", mode: 0o600)
        try SecureFiles.write(identity.chain.pemText, to: dataDir + "/cert.pem", mode: 0o644)
    }
}
