import Crypto
import Foundation
import Logging
import MeshCore
import MeshIdentity

/// `DATA/admin/`: the admin key (kept across restarts) and `meshctl.yaml`, rewritten at every start with
/// the bound address and a fresh one-year admin certificate.
enum AdminFiles {
    static func loadOrCreateKey(dataDir: String) throws -> P256.Signing.PrivateKey {
        let dir = dataDir + "/admin"
        try SecureFiles.makeDirectory(dir)
        let path = dir + "/admin.key"
        if let pem = try SecureFiles.readString(path) {
            try SecureFiles.requirePrivate(path)
            do { return try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
                throw MeshError(
                    .invalidCertificate,
                    "\(path) is not a valid P-256 key (corrupt?); delete it to mint a new admin credential")
            }
        }
        let key = P256.Signing.PrivateKey()
        try SecureFiles.write(key.pemRepresentation, to: path, mode: 0o600)
        return key
    }

    static func writeCredential(
        dataDir: String, server: HostPort, ca: CertificateAuthority, key: P256.Signing.PrivateKey, logger: Logger
    ) throws {
        let cert = try ca.issue(
            identity: .admin(in: ca.trustDomain), publicKey: .init(key.publicKey), lifetime: .seconds(365 * 86400))
        let credential = AdminCredential(
            server: "\(server)", trustDomain: ca.trustDomain, ca: ca.root, certificate: cert, key: key)
        let path = dataDir + "/admin/meshctl.yaml"
        try SecureFiles.write(credential.yamlText, to: path, mode: 0o600)
        logger.info("admin credential written", metadata: ["path": "\(path)"])
    }
}
