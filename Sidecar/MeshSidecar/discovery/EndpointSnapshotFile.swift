import Foundation
import MeshControlClient
import MeshCore

/// The last endpoint set of every destination this sidecar has called, kept next to the policy
/// (`DATA/endpoints.json`, 0600, written atomically on every change), so a sidecar restarted while the control
/// plane is down still reaches what it called before (static stability). Entries that do not read back as valid
/// are dropped one by one, never the whole file.
enum EndpointSnapshotFile {
    /// One destination's endpoints, and when the sidecar received them (wall clock, for `/config`'s age).
    struct Saved: Sendable {
        let snapshot: DiscoveredService
        let received: Date
    }

    private struct File: Codable {
        var destinations: [Destination]
    }

    private struct Destination: Codable {
        let service: String
        let known: Bool
        let revision: UInt64
        let received: Double
        let endpoints: [Endpoint]
    }

    private struct Endpoint: Codable {
        let host: String
        let port: Int
        let identity: String
        let labels: [String: String]
    }

    static func write(_ saved: [Saved], to path: String) throws {
        let file = File(
            destinations: saved.map { entry in
                Destination(
                    service: entry.snapshot.service.value, known: entry.snapshot.known,
                    revision: entry.snapshot.revision, received: entry.received.timeIntervalSince1970,
                    endpoints: entry.snapshot.endpoints.map {
                        Endpoint(
                            host: $0.address.host, port: $0.address.port, identity: $0.identity.uri, labels: $0.labels)
                    })
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try SecureFiles.write(Array(try encoder.encode(file)), to: path)
    }

    /// What `path` holds; nothing when it is absent or unreadable (the caller logs `skipped`).
    static func read(_ path: String) -> (saved: [Saved], skipped: Int) {
        guard let bytes = try? SecureFiles.read(path),
            let file = try? JSONDecoder().decode(File.self, from: Data(bytes))
        else { return ([], 0) }
        var saved: [Saved] = []
        var skipped = 0
        for destination in file.destinations {
            guard let service = try? ServiceName(destination.service),
                let endpoints = try? destination.endpoints.map({ e throws(MeshError) in
                    try DiscoveredEndpoint(
                        address: HostPort(parsing: HostPort(host: e.host, port: e.port).description),
                        identity: SPIFFEID(parsing: e.identity), labels: e.labels)
                })
            else {
                skipped += 1
                continue
            }
            saved.append(
                Saved(
                    snapshot: DiscoveredService(
                        service: service, known: destination.known, endpoints: endpoints,
                        revision: destination.revision),
                    received: Date(timeIntervalSince1970: destination.received)))
        }
        return (saved, skipped)
    }
}
