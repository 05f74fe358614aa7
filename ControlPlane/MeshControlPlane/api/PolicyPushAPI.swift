import Foundation
import GRPCCore
import Logging
import MeshAPI
import MeshCore
import MeshPolicy
import ServiceLifecycle

/// Pushes each sidecar the slice of policy it needs, newest version only, after a short debounce so a burst
/// of changes goes out once; records its ACKs and NACKs in the convergence tracker.
struct PolicyPushAPI: Meshwork_V1_PolicyPush.SimpleServiceProtocol {
    let registry: PolicyRegistry
    let tracker: ConvergenceTracker
    /// Streams reopened all at once (after a restart or a partition) are let in at a bounded rate, in order.
    let gate: AdmissionGate
    let metrics: ControlPlaneMetrics
    let trustDomain: TrustDomain
    let logger: Logger
    /// Changes closer together than this reach a sidecar as one push.
    var debounce: Duration = .milliseconds(50)

    /// What the reader tells the writer.
    private enum Event: Sendable {
        case destinations(Set<String>)
    }

    func stream(
        request: RPCAsyncSequence<Meshwork_V1_PolicyAck, any Error>, response: RPCWriter<Meshwork_V1_PolicySnapshot>,
        context: ServerContext
    ) async throws {
        let (_, service) = try CallerIdentity(context).requireWorkload(trustDomain)
        let messages = ReaderBox(request.makeAsyncIterator())
        guard let hello = try await messages.iterator.next(), hello.hello else {
            throw RPCError(code: .invalidArgument, message: "a policy stream starts with a hello (hello: true)")
        }
        let instance = "\(service)@\(hello.advertise)"
        await gate.admit()
        let id = await tracker.connected(instance: instance, service: service.value, running: hello.version)
        let (watchID, versions) = await registry.watch()
        let (events, eventSink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        eventSink.yield(.destinations(Set(hello.destinations)))
        logger.info("policy stream open", metadata: ["instance": "\(instance)", "running": "\(hello.version)"])
        defer { logger.info("policy stream closed", metadata: ["instance": "\(instance)"]) }
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let sent = SentVersions()
                    group.addTask {
                        // Reader: ACKs, NACKs and destination updates.
                        while let message = try await messages.iterator.next() {
                            if message.hello {
                                eventSink.yield(.destinations(Set(message.destinations)))
                                continue
                            }
                            guard await sent.contains(message.version) else {
                                throw RPCError(
                                    code: .invalidArgument,
                                    message:
                                        "acknowledgement for version \(message.version), which was never sent on this stream"
                                )
                            }
                            if let at = await sent.sentAt(message.version) {
                                metrics.ackSeconds.record(ContinuousClock.now - at)
                            }
                            if message.error.isEmpty {
                                await tracker.acknowledged(id, version: message.version)
                            } else {
                                metrics.nacks.increment()
                                await tracker.rejected(id, version: message.version, error: message.error)
                                logger.warning(
                                    "sidecar rejected a policy version",
                                    metadata: [
                                        "instance": "\(instance)", "version": "\(message.version)",
                                        "reason": "\(message.error)",
                                    ])
                            }
                        }
                        eventSink.finish()
                    }
                    group.addTask {
                        try await push(
                            versions: versions, events: events, to: response, service: service.value, sent: sent)
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            await registry.unwatch(watchID)
            await tracker.disconnected(id)
            throw error
        }
        await registry.unwatch(watchID)
        await tracker.disconnected(id)
    }

    /// Writer: on a new version or new destinations, waits out the debounce, then sends the newest slice if it
    /// is newer than what this sidecar has or its destinations changed.
    private func push(
        versions: AsyncStream<(UInt64, PolicySet)>, events: AsyncStream<Event>,
        to response: RPCWriter<Meshwork_V1_PolicySnapshot>, service: String, sent: SentVersions
    ) async throws {
        let latest = LatestPolicy()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await (version, set) in versions { await latest.set(version: version, set: set) }
            }
            group.addTask {
                for await event in events {
                    if case .destinations(let d) = event { await latest.set(destinations: d) }
                }
            }
            group.addTask {
                for await _ in latest.changes {
                    try await Task.sleep(for: debounce)
                    guard let (version, documents) = await latest.take(service: service) else { continue }
                    var snapshot = Meshwork_V1_PolicySnapshot()
                    snapshot.version = version
                    snapshot.documentsJson = documents.map { $0.canonicalJSON() }
                    await sent.insert(version)
                    await tracker.pushed(version)
                    try await response.write(snapshot)
                    metrics.pushes.increment()
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// The request iterator, handed to the one child task that reads it (iterators are not Sendable).
private final class ReaderBox<Iterator: AsyncIteratorProtocol>: @unchecked Sendable {
    var iterator: Iterator
    init(_ iterator: Iterator) { self.iterator = iterator }
}

/// The versions sent on one stream: an ACK may only name one of them.
private actor SentVersions {
    private var versions: [UInt64: ContinuousClock.Instant] = [:]
    /// `v` was sent (again, when the sidecar's destinations changed: its ACK is timed from the last send).
    func insert(_ v: UInt64) { versions[v] = .now }
    func contains(_ v: UInt64) -> Bool { versions[v] != nil }
    /// When `v` was last sent on this stream.
    func sentAt(_ v: UInt64) -> ContinuousClock.Instant? { versions[v] }
}

/// The newest version and destinations of one stream, and whether something changed since the last push.
private actor LatestPolicy {
    private var version: UInt64 = 0
    private var set = PolicySet()
    private var destinations: Set<String> = []
    private var lastSent: (UInt64, [PolicyDocument])?
    /// One element per burst of changes (a reader that is behind sees one, not many).
    nonisolated let changes: AsyncStream<Void>
    private let signalChange: AsyncStream<Void>.Continuation

    init() { (changes, signalChange) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }

    func set(version: UInt64, set: PolicySet) {
        self.version = version
        self.set = set
        signal()
    }

    func set(destinations: Set<String>) {
        guard destinations != self.destinations else { return }
        self.destinations = destinations
        signal()
    }

    private func signal() { signalChange.yield() }

    /// The slice to send, unless the sidecar already has exactly it.
    func take(service: String) -> (UInt64, [PolicyDocument])? {
        let documents = set.slice(for: service, destinations: destinations)
        if let lastSent, lastSent.0 == version, lastSent.1 == documents { return nil }
        lastSent = (version, documents)
        return (version, documents)
    }
}
