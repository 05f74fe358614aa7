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

/// The discovery registry: instances per service and the watchers of each service. A watcher holds only
/// the newest snapshot (`bufferingNewest(1)`), so a slow one is never sent stale intermediate states.
actor EndpointRegistry {
    private struct Entry {
        var endpoints: [String: RegisteredEndpoint] = [:]
        var revision: UInt64 = 0
        var known = false
    }

    private var services: [ServiceName: Entry] = [:]
    private var watchers: [ServiceName: [Int: AsyncStream<EndpointSnapshot>.Continuation]] = [:]
    private var nextWatcher = 0

    func register(_ service: ServiceName, _ endpoint: RegisteredEndpoint) {
        var entry = services[service, default: Entry()]
        if entry.known && entry.endpoints[endpoint.key] == endpoint { return }
        entry.known = true
        entry.endpoints[endpoint.key] = endpoint
        entry.revision += 1
        services[service] = entry
        publish(service)
    }

    func deregister(_ service: ServiceName, key: String) {
        guard var entry = services[service], entry.endpoints.removeValue(forKey: key) != nil else { return }
        entry.revision += 1
        services[service] = entry
        publish(service)
    }

    func snapshot(_ service: ServiceName) -> EndpointSnapshot {
        let entry = services[service] ?? Entry()
        return EndpointSnapshot(
            service: service, known: entry.known,
            endpoints: entry.endpoints.values.sorted { $0.key < $1.key }, revision: entry.revision)
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

    private func publish(_ service: ServiceName) {
        let snap = snapshot(service)
        for continuation in (watchers[service] ?? [:]).values { continuation.yield(snap) }
    }
}
