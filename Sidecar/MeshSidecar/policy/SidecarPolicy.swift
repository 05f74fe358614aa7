import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshPolicy
import NIOConcurrencyHelpers

/// The policy this sidecar runs: its slice of the mesh policy at one version, compiled into the snapshot the
/// data path reads. Every pushed document is read with the same strict rules as `meshctl validate` (so a field
/// or kind this sidecar does not understand refuses the version instead of being silently dropped), compiled,
/// written to `DATA/policy.json` (0600, atomic) and only then acknowledged. A version it cannot apply is refused
/// with the reason and the last good one stays in force.
///
/// Fail closed: while a version with an AuthorizationPolicy for this service is in force, the marker file
/// `DATA/authorization.required` exists. A sidecar that starts with the marker but without a policy file it can
/// read refuses every inbound request (503 `policy_unavailable`) until a version arrives.
final class SidecarPolicy: Sendable {
    struct Current: Sendable, Equatable {
        var version: UInt64 = 0
        var documents: [PolicyDocument] = []
    }

    private struct State {
        var current: Current
        var snapshot: PolicySnapshot
    }

    private let state: NIOLockedValueBox<State>
    private let path: String?
    private let marker: String?
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
        marker = path.map {
            URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent(Self.markerName).path
        }
        var state = State(current: Current(), snapshot: .empty(for: service))
        var loaded = false
        if let path, let bytes = try? SecureFiles.read(path) {
            if let file = try? JSONDecoder().decode(File.self, from: Data(bytes)),
                let snapshot = try? PolicySnapshot.compile(
                    version: file.version, documents: file.documents, for: service)
            {
                state = State(current: Current(version: file.version, documents: file.documents), snapshot: snapshot)
                loaded = true
                logger.notice(
                    "last known good policy loaded", metadata: ["version": "\(file.version)", "file": "\(path)"])
            } else {
                logger.warning(
                    "ignoring an unreadable policy file; starting without policy until the control plane sends one",
                    metadata: ["file": "\(path)"])
            }
        }
        if !loaded, let marker, FileManager.default.fileExists(atPath: marker) {
            state.snapshot = .empty(for: service, failClosed: true)
            logger.error(
                "this sidecar ran an AuthorizationPolicy and cannot load one: refusing inbound requests (503 policy_unavailable) until the control plane sends a policy",
                metadata: ["file": "\(path ?? "")", "marker": "\(marker)"])
        }
        self.state = NIOLockedValueBox(state)
    }

    static let markerName = "authorization.required"

    var current: Current { state.withLockedValue { $0.current } }

    /// True while inbound requests are refused for want of a policy (fail closed).
    var unavailable: Bool { snapshot.inbound.access == .unavailable }

    /// The compiled policy the data path reads (one lock to take the reference, once per request).
    var snapshot: PolicySnapshot { state.withLockedValue { $0.snapshot } }

    /// Checks and adopts a pushed version: nil when applied (and persisted), else why not.
    func adopt(_ pushed: PushedPolicy) -> String? {
        var documents: [PolicyDocument] = []
        for (index, data) in pushed.documents.enumerated() {
            // JSON is YAML: the loader's strict reading reports unknown fields and kinds with their key paths.
            let name = "version \(pushed.version) document \(index + 1)"
            switch PolicyLoader.load(yaml: String(decoding: data, as: UTF8.self), file: name) {
            case .success(let loaded) where loaded.count == 1:
                documents.append(loaded[0].document)
            case .success:
                return "\(name): expected exactly one policy document"
            case .failure(let errors):
                let problems = errors.issues.map { "\($0.keyPath.isEmpty ? "" : "\($0.keyPath): ")\($0.message)" }
                return
                    "\(name) cannot be applied by this sidecar (is it older than the control plane?): \(problems.joined(separator: "; "))"
            }
        }
        return apply(version: pushed.version, documents)
    }

    /// Compiles, persists (with a file) and puts in force one version's documents: nil when done, else why not.
    /// Standalone mode applies its `--policy` file this way, as version 1.
    func apply(version: UInt64, _ documents: [PolicyDocument]) -> String? {
        if let problem = conflict(in: documents) { return "version \(version): \(problem)" }
        let snapshot: PolicySnapshot
        do {
            snapshot = try PolicySnapshot.compile(version: version, documents: documents, for: service)
        } catch {
            return "version \(version): \(error.message)"
        }
        if let path, let marker {
            // The marker goes first and comes off last, so no crash leaves authorization without it.
            let authorizes = snapshot.inbound.authorizes
            do {
                if authorizes { try SecureFiles.write(Array("\(version)\n".utf8), to: marker) }
                let data = try JSONEncoder().encode(File(version: version, documents: documents))
                try SecureFiles.write(Array(data), to: path)
                if !authorizes, FileManager.default.fileExists(atPath: marker) {
                    try FileManager.default.removeItem(atPath: marker)
                }
            } catch {
                return "version \(version): cannot persist it to \(path) (\(error))"
            }
        }
        state.withLockedValue {
            $0 = State(current: Current(version: version, documents: documents), snapshot: snapshot)
        }
        return nil
    }

    /// What this sidecar cannot do as told: its own Service declaring another protocol than it runs; routes or
    /// rate limits (which judge HTTP requests) for its service when it relays opaque TCP.
    private func conflict(in documents: [PolicyDocument]) -> String? {
        if appProtocol == .tcp {
            for document in documents {
                switch document {
                case .authorization(let a) where a.spec.service == service.value:
                    if let index = a.spec.rules.firstIndex(where: { !$0.to.isEmpty }) {
                        return
                            "AuthorizationPolicy/\(a.name) spec.rules[\(index)].to names routes, but this sidecar relays opaque TCP (--protocol tcp) and can only judge callers per connection; remove the routes"
                    }
                case .traffic(let t) where t.spec.service == service.value && t.spec.rateLimit != nil:
                    return
                        "TrafficPolicy/\(t.name) spec.rateLimit counts HTTP requests, but this sidecar relays opaque TCP (--protocol tcp); remove it"
                default: break
                }
            }
        }
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
