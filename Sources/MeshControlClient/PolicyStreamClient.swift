import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import MeshCore
import MeshIdentity

/// One policy snapshot as pushed: a version and its documents as canonical JSON.
public struct PushedPolicy: Sendable {
    public let version: UInt64
    public let documents: [Data]

    public init(version: UInt64, documents: [Data]) {
        self.version = version
        self.documents = documents
    }
}

/// The sidecar's end of the policy push stream, with its workload certificate.
public enum PolicyStreamClient {
    /// Opens the stream, says hello (the version it runs, where it is, what it calls), and hands every snapshot
    /// to `onPolicy`, which returns nil to ACK or the reason to NACK. `destinations` is polled every second and
    /// sent again when it changes. Returns when the stream ends; throws `ControlPlaneError` on failure.
    public static func run(
        session: ControlPlaneSession, running: UInt64, advertise: HostPort,
        destinations: @Sendable @escaping () -> Set<String>,
        onPolicy: @Sendable @escaping (PushedPolicy) async -> String?
    ) async throws {
        let (outgoing, sink) = AsyncStream.makeStream(of: Meshwork_V1_PolicyAck.self)
        /// The hello, sent first and again whenever the destinations change.
        @Sendable func hello(_ destinations: Set<String>) -> Meshwork_V1_PolicyAck {
            var hello = Meshwork_V1_PolicyAck()
            hello.hello = true
            hello.version = running
            hello.advertise = "\(advertise)"
            hello.destinations = destinations.sorted()
            return hello
        }
        let initial = destinations()
        sink.yield(hello(initial))
        let request = StreamingClientRequest<Meshwork_V1_PolicyAck> { writer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var known = initial
                    while !Task.isCancelled {
                        try await Task.sleep(for: .seconds(1))
                        let now = destinations()
                        guard now != known else { continue }
                        known = now
                        sink.yield(hello(now))
                    }
                }
                for await message in outgoing { try await writer.write(message) }
                group.cancelAll()
            }
        }
        do {
            try await Meshwork_V1_PolicyPush.Client(wrapping: try session.client()).stream(request: request) {
                response in
                defer { sink.finish() }
                for try await snapshot in response.messages {
                    let error = await onPolicy(
                        PushedPolicy(version: snapshot.version, documents: snapshot.documentsJson))
                    var ack = Meshwork_V1_PolicyAck()
                    ack.version = snapshot.version
                    ack.error = error ?? ""
                    sink.yield(ack)
                }
            }
        } catch let error as RPCError {
            throw ControlPlaneError(error)
        }
    }
}
