import Crypto
import Foundation
import MeshControlClient
import MeshCore
import MeshIdentity
import X509
import Yams

/// `meshctl.yaml` as written by `mesh-control` (`AdminCredential`): parsed and checked once.
struct MeshctlConfig {
    let client: ControlPlaneClient

    private struct File: Decodable {
        var server: String
        var trustDomain: String
        var caPin: String
        var ca: String
        var certificate: String
        var key: String
    }

    static let defaultPath = "/var/lib/meshwork/control/admin/meshctl.yaml"

    static func load(path explicit: String?) throws -> MeshctlConfig {
        let path = explicit ?? ProcessInfo.processInfo.environment["MESHCTL_CONFIG"] ?? defaultPath
        guard let text = try SecureFiles.readString(path) else {
            throw MeshError(
                .invalidConfiguration,
                "no meshctl config at \(path): pass --config DATA/admin/meshctl.yaml or set MESHCTL_CONFIG")
        }
        // It holds the admin key: anyone who can read it can run the mesh.
        try SecureFiles.requirePrivate(path)
        let file: File
        do { file = try YAMLDecoder().decode(File.self, from: text) } catch {
            throw MeshError(.invalidConfiguration, "\(path) is not a meshctl config: \(error)")
        }
        let server = try HostPort(parsing: file.server)
        let td = try TrustDomain(file.trustDomain)
        let ca = try [Certificate](pemBundle: file.ca, what: "\(path) ca")[0]
        let pin = try CAPin(parsing: file.caPin)
        guard pin.matches(ca) else { throw MeshError(.invalidConfiguration, "\(path): caPin does not match ca") }
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: file.key) } catch {
            throw MeshError(.invalidConfiguration, "\(path): key is not a P-256 PEM key")
        }
        let chain = try [Certificate](pemBundle: file.certificate, what: "\(path) certificate")
        return MeshctlConfig(
            client: ControlPlaneClient(address: server, trustDomain: td, trust: .pinned(pin), chain: chain, key: key))
    }
}
