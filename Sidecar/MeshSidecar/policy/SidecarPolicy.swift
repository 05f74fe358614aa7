import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshPolicy
import NIOConcurrencyHelpers

/// The policy this sidecar runs: its slice of the mesh policy at one version. Every adopted version is written
/// to `DATA/policy.json` (0600, atomic) before it is acknowledged, so a sidecar restarted while the control
/// plane is down starts from its last good policy. A version it cannot apply is refused with the reason and
/// the last good one stays in force.
final class SidecarPolicy: Sendable {
    struct Current: Sendable, Equatable {
        var version: UInt64 = 0
        var documents: [PolicyDocument] = []
    }

    private let state: NIOLockedValueBox<Current>
    private let path: String?
    let service: ServiceName
    let appProtocol: AppProtocol

    private struct File: Codable {
        let version: UInt64
        let documents: [PolicyDocument]
    }

    init(path: String?, service: ServiceName, appProtocol: AppProtocol, logger: Logger) {
        self.path = path
        self.service = service
        self.appProtocol = appProtocol
        var current = Current()
        if let path, let bytes = try? SecureFiles.read(path) {
            if let file = try? JSONDecoder().decode(File.self, from: Data(bytes)) {
                current = Current(version: file.version, documents: file.documents)
                logger.notice(
                    "last known good policy loaded", metadata: ["version": "\(file.version)", "file": "\(path)"])
            } else {
                logger.warning(
                    "ignoring an unreadable policy file; starting without policy until the control plane sends one",
                    metadata: ["file": "\(path)"])
            }
        }
        state = NIOLockedValueBox(current)
    }

    var current: Current { state.withLockedValue { $0 } }

    /// Checks and adopts a pushed version: nil when applied (and persisted), else why not.
    func adopt(_ pushed: PushedPolicy) -> String? {
        var documents: [PolicyDocument] = []
        for data in pushed.documents {
            do { documents.append(try JSONDecoder().decode(PolicyDocument.self, from: data)) } catch {
                return
                    "version \(pushed.version): a document this sidecar cannot read (\(error)); is it older than the control plane?"
            }
        }
        if let problem = conflict(in: documents) { return "version \(pushed.version): \(problem)" }
        if let path {
            do {
                let data = try JSONEncoder().encode(File(version: pushed.version, documents: documents))
                try SecureFiles.write(Array(data), to: path)
            } catch {
                return "version \(pushed.version): cannot persist it to \(path) (\(error))"
            }
        }
        state.withLockedValue { $0 = Current(version: pushed.version, documents: documents) }
        return nil
    }

    /// What this sidecar cannot do as told: its own Service declaring another protocol than it runs.
    private func conflict(in documents: [PolicyDocument]) -> String? {
        for case .service(let declared) in documents where declared.name == service {
            let expected: AppProtocol =
                switch declared.spec.protocol {
                case .http: .http
                case .http2, .grpc: .http2
                case .tcp: .tcp
                }
            if expected != appProtocol {
                return
                    "Service \(service) declares protocol \(declared.spec.protocol.rawValue), but this sidecar runs --protocol \(appProtocol.rawValue); restart it with --protocol \(expected.rawValue) or correct the Service"
            }
        }
        return nil
    }
}
