import MeshControlClient
import MeshCore
import NIOConcurrencyHelpers
import NIOCore

/// The latest endpoint set of every destination this sidecar has used. The data path reads it without
/// waiting; the first request for a new destination starts its watch and waits (bounded) for the first
/// snapshot.
final class EndpointCache: Sendable {
    private struct Entry {
        var latest: DiscoveredService?
        var waiters: [Int: EventLoopPromise<DiscoveredService>] = [:]
    }

    /// The entries, and the id of the last waiter (so a timed-out one can be removed), under one lock.
    private let entries = NIOLockedValueBox<(byService: [ServiceName: Entry], lastWaiter: Int)>(([:], 0))
    private let requests: AsyncStream<ServiceName>.Continuation
    /// Services to start watching, consumed by `DiscoveryWatchService`.
    let watchRequests: AsyncStream<ServiceName>
    let firstSnapshotTimeout: TimeAmount
    /// Standalone mode: the endpoints are all there is; an unknown service fails at once.
    let isStatic: Bool

    init(firstSnapshotTimeout: TimeAmount = .seconds(5)) {
        (watchRequests, requests) = AsyncStream.makeStream(of: ServiceName.self)
        self.firstSnapshotTimeout = firstSnapshotTimeout
        isStatic = false
    }

    /// A cache that holds exactly `endpoints` (from `--endpoint`), each expected to prove the workload
    /// identity of its service.
    init(staticEndpoints endpoints: [ServiceName: [HostPort]], trustDomain: TrustDomain) {
        (watchRequests, requests) = AsyncStream.makeStream(of: ServiceName.self)
        requests.finish()
        firstSnapshotTimeout = .zero
        isStatic = true
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

    func update(_ snapshot: DiscoveredService) {
        let waiters = entries.withLockedValue { all -> [EventLoopPromise<DiscoveredService>] in
            var entry = all.byService[snapshot.service] ?? Entry()
            entry.latest = snapshot
            let waiting = Array(entry.waiters.values)
            entry.waiters = [:]
            all.byService[snapshot.service] = entry
            return waiting
        }
        for waiter in waiters { waiter.succeed(snapshot) }
    }

    func snapshot(_ service: ServiceName) -> DiscoveredService? {
        entries.withLockedValue { $0.byService[service]?.latest }
    }

    /// Every destination with a snapshot, by name.
    func allSnapshots() -> [DiscoveredService] {
        entries.withLockedValue { all in all.byService.values.compactMap(\.latest) }.sorted { $0.service < $1.service }
    }

    func finish() { requests.finish() }
}
