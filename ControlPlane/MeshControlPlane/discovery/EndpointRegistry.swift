import MeshCore

/// One registered instance of a service.
public struct RegisteredEndpoint: Hashable, Sendable {
    public var host: String
    public var port: Int
    public var identity: String
    public var labels: [String: String]

    public var key: String { "\(host):\(port)" }
}

/// The endpoints of one service at one revision. `known` is false until the service has had an instance.
public struct EndpointSnapshot: Sendable, Equatable {
    public var service: ServiceName
    public var known: Bool
    public var endpoints: [RegisteredEndpoint]
    public var revision: UInt64
}

/// The discovery registry: instances per service, each with a lease and its app's health, and the watchers
/// of each service. Watchers see only live, healthy instances. A watcher holds only the newest snapshot
/// (`bufferingNewest(1)`), so a slow one is never sent stale intermediate states.
///
/// Limits: a service has at most `maxPerService` instances; one connection registers at most `maxPerConnection`
/// distinct instances (a sidecar registers one). Renewing an instance never counts as new, and an instance stays
/// counted against the connection that first registered it (renewing it over another connection does not free
/// a slot there). Instances are kept per service: only a holder of a service's identity can register, renew or
/// remove its instances.
actor EndpointRegistry {
    private struct Instance: Equatable {
        var endpoint: RegisteredEndpoint
        var healthy: Bool
        var expires: ContinuousClock.Instant
        /// The connection that first registered it.
        var registrant: String
    }

    struct Limits: Sendable {
        var maxPerService = 1000
        var maxPerConnection = 1
    }

    private struct Entry {
        var instances: [String: Instance] = [:]
        var revision: UInt64 = 0
        var known = false
        /// What watchers were last sent, to publish only real changes (not every lease renewal).
        var served: [RegisteredEndpoint] = []
    }

    /// How long a registration lasts without renewal.
    let leaseTTL: Duration
    let limits: Limits
    private var services: [ServiceName: Entry] = [:]
    private var watchers: [ServiceName: [Int: AsyncStream<EndpointSnapshot>.Continuation]] = [:]
    private var nextWatcher = 0

    init(leaseTTL: Duration = .seconds(15), limits: Limits = Limits()) {
        self.leaseTTL = leaseTTL
        self.limits = limits
    }

    /// Registers or renews an instance (its lease restarts at `now`), with the health its sidecar reports;
    /// `registrant` names the connection it came over. Throws when a limit refuses it (nothing changes then).
    func register(
        _ service: ServiceName, _ endpoint: RegisteredEndpoint, healthy: Bool = true, registrant: String,
        now: ContinuousClock.Instant = .now
    ) throws(RegistrationRefusal) {
        let key = endpoint.key
        var entry = services[service, default: Entry()]
        if entry.instances[key] == nil {
            let byThisConnection = entry.instances.values.count { $0.registrant == registrant }
            guard byThisConnection < limits.maxPerConnection else {
                throw RegistrationRefusal(
                    .connectionInstanceLimit,
                    "this connection already registered \(byThisConnection) instance(s) of \"\(service)\", the most allowed (--max-instances-per-connection); a sidecar registers one"
                )
            }
            guard entry.instances.count < limits.maxPerService else {
                throw RegistrationRefusal(
                    .serviceInstanceLimit,
                    "service \"\(service)\" has \(entry.instances.count) instances, the most allowed (--max-instances-per-service)"
                )
            }
        }
        entry.known = true
        entry.instances[key] = Instance(
            endpoint: endpoint, healthy: healthy, expires: now + leaseTTL,
            registrant: entry.instances[key]?.registrant ?? registrant)
        services[service] = entry
        publishIfChanged(service)
    }

    func deregister(_ service: ServiceName, key: String) {
        guard services[service]?.instances.removeValue(forKey: key) != nil else { return }
        publishIfChanged(service)
    }

    /// Removes every instance whose lease lapsed before `now` (its sidecar died or lost the control plane);
    /// returns how many.
    @discardableResult
    func expire(now: ContinuousClock.Instant = .now) -> Int {
        var removed = 0
        for (service, entry) in services {
            let lapsed = entry.instances.filter { $0.value.expires < now }.map(\.key)
            guard !lapsed.isEmpty else { continue }
            for key in lapsed { services[service]?.instances.removeValue(forKey: key) }
            removed += lapsed.count
            publishIfChanged(service)
        }
        return removed
    }

    /// Instances registered now, every service together.
    var instanceCount: Int { services.values.reduce(0) { $0 + $1.instances.count } }

    func snapshot(_ service: ServiceName) -> EndpointSnapshot {
        let entry = services[service] ?? Entry()
        return EndpointSnapshot(service: service, known: entry.known, endpoints: entry.served, revision: entry.revision)
    }

    /// A stream that yields the current snapshot at once, then every change. The caller ends it with
    /// `unwatch(_:_:)` when it stops reading (the RPC handler does, however its stream ends).
    func watch(_ service: ServiceName) -> (id: Int, updates: AsyncStream<EndpointSnapshot>) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: EndpointSnapshot.self, bufferingPolicy: .bufferingNewest(1))
        let id = nextWatcher
        nextWatcher += 1
        watchers[service, default: [:]][id] = continuation
        continuation.yield(snapshot(service))
        return (id, stream)
    }

    var watcherCount: Int { watchers.values.reduce(0) { $0 + $1.count } }

    func unwatch(_ service: ServiceName, _ id: Int) {
        watchers[service]?.removeValue(forKey: id)?.finish()
    }

    /// Publishes when the served set (live and healthy instances) or `known` changed.
    private func publishIfChanged(_ service: ServiceName) {
        guard var entry = services[service] else { return }
        let served = entry.instances.values.filter(\.healthy).map(\.endpoint).sorted { $0.key < $1.key }
        guard served != entry.served || entry.revision == 0 else { return }
        entry.served = served
        entry.revision += 1
        services[service] = entry
        let snap = snapshot(service)
        for continuation in (watchers[service] ?? [:]).values { continuation.yield(snap) }
    }
}
