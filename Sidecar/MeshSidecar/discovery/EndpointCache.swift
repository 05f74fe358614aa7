import Foundation
import MeshControlClient
import MeshCore
import NIOConcurrencyHelpers
import NIOCore

/// The latest endpoint set of every destination this sidecar has used. The data path reads it without
/// waiting; the first request for a new destination starts its watch and waits (bounded) for the first
/// snapshot. With a file, every change is persisted and a restart begins from what was persisted (watching
/// each of those destinations again at once), so the sidecar keeps reaching them while the control plane is down.
final class EndpointCache: Sendable {
    private struct Entry {
        var latest: DiscoveredService?
        var waiters: [Int: EventLoopPromise<DiscoveredService>] = [:]
        /// When `latest` arrived (wall clock), and whether it came from the file rather than the control plane.
        var received: Date?
        var fromDisk = false
    }

    /// A destination's snapshot as `/config` shows it.
    struct Held: Sendable {
        let snapshot: DiscoveredService
        let received: Date?
        let fromDisk: Bool
    }

    /// The entries, and the id of the last waiter (so a timed-out one can be removed), under one lock.
    private let entries = NIOLockedValueBox<(byService: [ServiceName: Entry], lastWaiter: Int)>(([:], 0))
    private let requests: AsyncStream<ServiceName>.Continuation
    /// Services to start watching, consumed by `DiscoveryWatchService`.
    let watchRequests: AsyncStream<ServiceName>
    let firstSnapshotTimeout: TimeAmount
    /// Standalone mode: the endpoints are all there is; an unknown service fails at once.
    let isStatic: Bool
    private let file: String?
    private let fileLock = NIOLock()

    /// `file`: where snapshots are persisted (and read back from at start); `loaded` reports what was read.
    init(firstSnapshotTimeout: TimeAmount = .seconds(5), file: String? = nil, loaded: (Int, Int) -> Void = { _, _ in })
    {
        (watchRequests, requests) = AsyncStream.makeStream(of: ServiceName.self)
        self.firstSnapshotTimeout = firstSnapshotTimeout
        isStatic = false
        self.file = file
        guard let file else { return }
        let (saved, skipped) = EndpointSnapshotFile.read(file)
        entries.withLockedValue { all in
            for entry in saved {
                all.byService[entry.snapshot.service] = Entry(
                    latest: entry.snapshot, received: entry.received, fromDisk: true)
            }
        }
        // Watched again at once: the persisted sets are a start, the control plane has the truth.
        for entry in saved { requests.yield(entry.snapshot.service) }
        loaded(saved.count, skipped)
    }

    /// A cache that holds exactly `endpoints` (from `--endpoint`), each expected to prove the workload
    /// identity of its service.
    init(staticEndpoints endpoints: [ServiceName: [HostPort]], trustDomain: TrustDomain) {
        (watchRequests, requests) = AsyncStream.makeStream(of: ServiceName.self)
        requests.finish()
        firstSnapshotTimeout = .zero
        isStatic = true
        file = nil
        entries.withLockedValue { all in
            for (service, addresses) in endpoints {
                let identity = SPIFFEID.workload(service, in: trustDomain)
                all.byService[service] = Entry(
                    latest: DiscoveredService(
                        service: service, known: true,
                        endpoints: addresses.map { DiscoveredEndpoint(address: $0, identity: identity) }, revision: 1))
            }
        }
    }

    /// A destination's endpoints: at once when cached (every request but a destination's first), else once
    /// discovery first answers.
    enum Lookup {
        case ready(DiscoveredService)
        case pending(EventLoopFuture<DiscoveredService>)
    }

    func resolve(_ service: ServiceName, on eventLoop: any EventLoop) -> EventLoopFuture<DiscoveredService> {
        switch lookup(service, on: eventLoop) {
        case .ready(let snapshot): eventLoop.makeSucceededFuture(snapshot)
        case .pending(let future): future
        }
    }

    func lookup(_ service: ServiceName, on eventLoop: any EventLoop) -> Lookup {
        // One lock per request: the cached snapshot, or (first use only) a waiter for the first one.
        let (cached, waiter, id, isNew) = entries.withLockedValue {
            all -> (DiscoveredService?, EventLoopPromise<DiscoveredService>?, Int, Bool) in
            if let latest = all.byService[service]?.latest { return (latest, nil, 0, false) }
            if isStatic {
                return (DiscoveredService(service: service, known: false, endpoints: [], revision: 0), nil, 0, false)
            }
            let isNew = all.byService[service] == nil
            let promise = eventLoop.makePromise(of: DiscoveredService.self)
            all.lastWaiter += 1
            all.byService[service, default: Entry()].waiters[all.lastWaiter] = promise
            return (nil, promise, all.lastWaiter, isNew)
        }
        if let cached { return .ready(cached) }
        guard let waiter else { preconditionFailure("no cached snapshot and no waiter") }
        if isNew { requests.yield(service) }
        eventLoop.scheduleTask(in: firstSnapshotTimeout) { [entries, timeout = firstSnapshotTimeout] in
            let expired = entries.withLockedValue { $0.byService[service]?.waiters.removeValue(forKey: id) }
            expired?.fail(
                ProxyError(
                    .discoveryUnavailable,
                    "no endpoint data for \(service) from the control plane within \(timeout.nanoseconds / 1_000_000) ms"
                ))
        }
        return .pending(waiter.futureResult)
    }

    /// A snapshot from the control plane; persisted (if the cache has a file) before it returns. Throws only
    /// when persisting failed (the snapshot is in use regardless).
    func update(_ snapshot: DiscoveredService) throws {
        let now = Date()
        let waiters = entries.withLockedValue { all -> [EventLoopPromise<DiscoveredService>] in
            var entry = all.byService[snapshot.service] ?? Entry()
            entry.latest = snapshot
            entry.received = now
            entry.fromDisk = false
            let waiting = Array(entry.waiters.values)
            entry.waiters = [:]
            all.byService[snapshot.service] = entry
            return waiting
        }
        for waiter in waiters { waiter.succeed(snapshot) }
        guard let file else { return }
        // Read and written under one lock: two destinations' watches updating at once cannot write their sets in
        // the opposite order of reading them (the file would keep the older one).
        try fileLock.withLock {
            let saved = entries.withLockedValue { all in
                all.byService.values.compactMap { e in
                    e.latest.map { EndpointSnapshotFile.Saved(snapshot: $0, received: e.received ?? now) }
                }
            }
            try EndpointSnapshotFile.write(saved, to: file)
        }
    }

    func snapshot(_ service: ServiceName) -> DiscoveredService? {
        entries.withLockedValue { $0.byService[service]?.latest }
    }

    /// Every destination with a snapshot, by name.
    func allSnapshots() -> [DiscoveredService] {
        entries.withLockedValue { all in all.byService.values.compactMap(\.latest) }.sorted { $0.service < $1.service }
    }

    /// Every destination with a snapshot, with where it came from and when, by name.
    func held() -> [Held] {
        entries.withLockedValue { all in
            all.byService.values.compactMap { e in
                e.latest.map { Held(snapshot: $0, received: e.received, fromDisk: e.fromDisk) }
            }
        }.sorted { $0.snapshot.service < $1.snapshot.service }
    }

    func finish() { requests.finish() }
}
