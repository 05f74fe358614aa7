import Crypto
import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshIdentity
import X509

/// Getting the first identity, per mode.
enum IdentityBootstrap {
    /// Control-plane mode: the identity on disk if it is still valid, else a new one with the join token.
    static func enrol(
        control: HostPort, tokenFile: String, dataDir: String, service: ServiceName, trustDomain: TrustDomain,
        logger: Logger
    ) async throws -> WorkloadIdentity {
        // A join token enrols a workload of its service: as secret as the key it will get. Checked whenever one is
        // given, also when the identity on disk makes it unnecessary today.
        try SecureFiles.requirePrivate(tokenFile)
        if let stored = try IdentityFiles.load(dataDir: dataDir) {
            if stored.spiffeID != .workload(service, in: trustDomain) {
                throw MeshError(
                    .invalidConfiguration,
                    "\(dataDir) holds the identity \(stored.spiffeID), not that of service \(service); use a data directory per service"
                )
            }
            if stored.notAfter > Date() {
                logger.info("using identity from disk", metadata: ["not_after": "\(stored.notAfter)"])
                return stored
            }
            logger.warning("identity on disk has expired; enrolling again with the join token")
        }
        guard !SecureFiles.isOnVolatileFilesystem(tokenFile) else {
            throw MeshError(
                .invalidConfiguration,
                "--token-file \(tokenFile) is on tmpfs, which a reboot empties: keep join tokens on persistent storage (e.g. /var/lib/meshwork/\(service)/join.token)"
            )
        }
        guard let text = try SecureFiles.readString(tokenFile) else {
            throw MeshError(
                .invalidConfiguration,
                "--token-file \(tokenFile) does not exist and \(dataDir) holds no valid identity: create a token with meshctl token create --service \(service)"
            )
        }
        let token = try JoinToken(parsing: text)
        do {
            let identity = try await Enrolment.certify(
                control: control, token: token, service: service, trustDomain: trustDomain)
            try IdentityFiles.save(identity, dataDir: dataDir)
            return identity
        } catch let error as ControlPlaneError {
            throw MeshError(
                .invalidToken,
                "enrolment with \(control) refused: \(error.message)\(error.reason.map { " [\($0)]" } ?? "")")
        }
    }

    /// Standalone mode: the brought-in files, which must name this service's SPIFFE ID.
    static func load(_ paths: IdentityFilePaths, service: ServiceName, trustDomain: TrustDomain) throws
        -> WorkloadIdentity
    {
        guard let keyPEM = try SecureFiles.readString(paths.key) else {
            throw MeshError(.invalidConfiguration, "--key \(paths.key) does not exist")
        }
        guard let certPEM = try SecureFiles.readString(paths.cert) else {
            throw MeshError(.invalidConfiguration, "--cert \(paths.cert) does not exist")
        }
        guard let bundlePEM = try SecureFiles.readString(paths.bundle) else {
            throw MeshError(.invalidConfiguration, "--bundle \(paths.bundle) does not exist")
        }
        try SecureFiles.requirePrivate(paths.key)
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM) } catch {
            throw MeshError(.invalidCertificate, "--key \(paths.key) is not a P-256 private key in PEM")
        }
        let identity = try WorkloadIdentity(
            key: key, chain: try [Certificate](pemBundle: certPEM, what: "--cert \(paths.cert)"),
            bundle: try TrustBundle(pem: bundlePEM, what: "--bundle \(paths.bundle)"))
        let expected = SPIFFEID.workload(service, in: trustDomain)
        guard identity.spiffeID == expected else {
            throw MeshError(
                .invalidConfiguration,
                "--cert \(paths.cert) names \(identity.spiffeID) but this sidecar is \(expected) (check --service and --trust-domain)"
            )
        }
        return identity
    }
}
