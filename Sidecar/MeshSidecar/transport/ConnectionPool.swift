import NIOCore
import NIOHTTP2

/// Upstream connections per endpoint, for one event loop (and used only on it, so no locks). An endpoint
/// that speaks HTTP/2 gets one shared connection and each request opens a stream on it; one that speaks
/// HTTP/1.1 gets keep-alive connections, one exchange at a time, of which the pool keeps as many idle as the
/// endpoint's recent peak of concurrent exchanges (up to `maxIdlePerEndpoint`): steady load opens no new
/// connections, and a burst's extra connections are let go once the burst has passed.
final class ConnectionPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    let connector: any UpstreamConnector
    private var idle: [EndpointTarget: [UpstreamLease]] = [:]
    /// The HTTP/2 connection per endpoint that new streams go to.
    private var shared: [EndpointTarget: UpstreamConnection] = [:]
    /// A connect in flight to an endpoint not known to speak HTTP/1.1 only (new, or HTTP/2 last time):
    /// requests wait for it rather than each opening a connection of its own, and share it if it is HTTP/2.
    var connecting: [EndpointTarget: EventLoopFuture<UpstreamConnection>] = [:]
    /// What each endpoint's last new connection spoke: true for HTTP/2.
    var speaksHTTP2: [EndpointTarget: Bool] = [:]
    var demand: [EndpointTarget: PoolDemand] = [:]
    /// New connections being opened per endpoint, and requests to an HTTP/1.1 endpoint waiting for a connection
    /// (given back, or newly opened) because enough are being opened already.
    var connectsInFlight: [EndpointTarget: Int] = [:]
    private var waiting: [EndpointTarget: CircularBuffer<EventLoopPromise<UpstreamLease>>] = [:]
    /// Open HTTP/1.1 connections per endpoint (circuit breaking caps them; requests past the cap wait).
    private var open: [EndpointTarget: Int] = [:]
    /// Used when the caller names none (the policy default is `TrafficPolicy.Defaults.connectTimeout`).
    static let defaultConnectTimeout = TimeAmount.seconds(1)
    /// At most this many handshakes at once per endpoint: a burst from cold used to open a connection (a full TLS
    /// handshake on this one event loop) per concurrent request — 64 of them, 80 ms of added p99 at 3000 req/s —
    /// where most requests are better served by a connection given back a millisecond later.
    static let maxConnectsInFlight = 4
    /// The most idle HTTP/1.1 connections kept per endpoint, whatever the peak.
    let maxIdlePerEndpoint: Int
    let now: @Sendable () -> NIODeadline

    init(
        eventLoop: any EventLoop, connector: any UpstreamConnector, maxIdlePerEndpoint: Int = 1024,
        now: @escaping @Sendable () -> NIODeadline = { .now() }
    ) {
        self.eventLoop = eventLoop
        self.connector = connector
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.now = now
        // One sweep per pool (per event loop), not a timer per connection: after a burst, idle connections
        // beyond what the recent peak wants are closed even if no request comes back to release one.
        eventLoop.scheduleRepeatedTask(initialDelay: PoolDemand.window, delay: PoolDemand.window) { [weak self] _ in
            self?.trimIdle()
        }
    }

    private func trimIdle() {
        let at = now()
        for (target, leases) in idle where !leases.isEmpty {
            let wanted = min(demand[target, default: PoolDemand()].wanted(at: at), maxIdlePerEndpoint)
            guard leases.count > wanted else { continue }
            // The oldest idle ones go (the list is used from its end).
            for lease in leases.prefix(leases.count - wanted) { lease.channel.close(promise: nil) }
            idle[target] = Array(leases.suffix(wanted))
        }
    }

    /// A lease for one exchange: an idle HTTP/1.1 connection at once, else a stream on a live HTTP/2 connection
    /// or a new connection. `connectTimeout` bounds a new connection's TCP connect, TLS handshake and (HTTP/2) the
    /// peer's SETTINGS; `maxConnections` caps the endpoint's HTTP/1.1 connections (past it, requests wait for one).
    func acquire(
        _ target: EndpointTarget, connectTimeout: TimeAmount = defaultConnectTimeout, maxConnections: Int = .max
    ) -> Acquired {
        eventLoop.preconditionInEventLoop()
        if let session = usableShared(target) { return .pending(session.openStream(to: target, reused: true)) }
        if let pending = connecting[target] {
            return .pending(stream(on: pending, target: target, connectTimeout, maxConnections))
        }
        return http1Lease(target, connectTimeout, maxConnections)
    }

    /// An idle HTTP/1.1 connection, a new one, or (at the endpoint's limits) a place in its queue.
    private func http1Lease(_ target: EndpointTarget, _ connectTimeout: TimeAmount, _ maxConnections: Int) -> Acquired {
        while let lease = idle[target]?.popLast() {
            if lease.channel.isActive {
                demand[target, default: PoolDemand()].acquired(at: now())
                return .ready(lease)
            }
        }
        return .pending(newConnection(target, connectTimeout, maxConnections))
    }

    /// A new connection, or at the endpoint's limits a place in its queue (a burst is no storm of handshakes).
    private func newConnection(_ target: EndpointTarget, _ connectTimeout: TimeAmount, _ maxConnections: Int)
        -> EventLoopFuture<UpstreamLease>
    {
        if speaksHTTP2[target] != true, atLimit(target, maxConnections) {
            return queue(target, connectTimeout, maxConnections)
        }
        return connectFresh(target, timeout: connectTimeout)
    }

    /// As many connections being opened as allowed at once, or as many open (and opening) as the cap allows.
    private func atLimit(_ target: EndpointTarget, _ maxConnections: Int) -> Bool {
        let inFlight = connectsInFlight[target, default: 0]
        return inFlight >= Self.maxConnectsInFlight || open[target, default: 0] + inFlight >= maxConnections
    }

    /// Whether `acquire` would put the request in the endpoint's queue (circuit breaking counts those as pending).
    func wouldWait(_ target: EndpointTarget, maxConnections: Int) -> Bool {
        guard speaksHTTP2[target] == false, connecting[target] == nil else { return false }
        if idle[target]?.contains(where: { $0.channel.isActive }) == true { return false }
        return atLimit(target, maxConnections)
    }

    /// The connect timeout and connection cap the latest waiter for each endpoint came with.
    private var limits: [EndpointTarget: (connect: TimeAmount, max: Int)] = [:]

    /// Starts connections for waiting requests while fewer than the limits are being opened.
    func serveWaiters(_ target: EndpointTarget) {
        let (connect, cap) = limits[target] ?? (Self.defaultConnectTimeout, .max)
        while !atLimit(target, cap), let waiter = waiting[target]?.popFirst() {
            connectFresh(target, timeout: connect).cascade(to: waiter)
        }
    }

    /// For a retry after a reused connection turned out stale: never an idle HTTP/1.1 connection (it may be just
    /// as stale), but a stream on an HTTP/2 connection that is live or being opened, so the requests of one
    /// failed connection move together to one new connection.
    func acquireFresh(_ target: EndpointTarget, connectTimeout: TimeAmount = defaultConnectTimeout)
        -> EventLoopFuture<UpstreamLease>
    {
        eventLoop.preconditionInEventLoop()
        if let session = usableShared(target) { return session.openStream(to: target, reused: false) }
        if let pending = connecting[target] { return stream(on: pending, target: target, connectTimeout, .max) }
        return newConnection(target, connectTimeout, .max)
    }

    /// A place in the endpoint's queue for the next connection given back or opened.
    private func queue(_ target: EndpointTarget, _ connectTimeout: TimeAmount, _ maxConnections: Int)
        -> EventLoopFuture<UpstreamLease>
    {
        let waiter = eventLoop.makePromise(of: UpstreamLease.self)
        waiting[target, default: []].append(waiter)
        limits[target] = (connectTimeout, maxConnections)
        return waiter.futureResult
    }

    /// A request no longer waits for the lease `future` would bring (its exchange ended): out of the queue, so
    /// no connection is spent on it.
    func abandon(_ future: EventLoopFuture<UpstreamLease>, target: EndpointTarget) {
        guard let index = waiting[target]?.firstIndex(where: { $0.futureResult === future }),
            let waiter = waiting[target]?.remove(at: index)
        else { return }
        waiter.fail(ChannelError.ioOnClosedChannel)
    }

    /// A stream on the connection being opened if it is HTTP/2; else (HTTP/1.1) a lease the usual way, within
    /// the endpoint's limits.
    private func stream(
        on pending: EventLoopFuture<UpstreamConnection>, target: EndpointTarget, _ connectTimeout: TimeAmount,
        _ maxConnections: Int
    ) -> EventLoopFuture<UpstreamLease> {
        pending.flatMap { connection in
            guard let session = connection.http2 else {
                return self.http1Lease(target, connectTimeout, maxConnections).future(on: self.eventLoop)
            }
            return session.openStream(to: target, reused: false)
        }
    }

    /// Gives a lease back after an exchange. An HTTP/1.1 connection that can carry another request waits
    /// in the idle list while the endpoint's recent peak wants it; an HTTP/2 stream closes itself when both
    /// sides ended, or is reset here.
    func release(_ lease: UpstreamLease, reusable: Bool) {
        eventLoop.preconditionInEventLoop()
        let channel = lease.channel
        lease.responses.sink = nil
        if channel.parent != nil {
            if !reusable { channel.close(promise: nil) }
            return
        }
        guard lease.poolable else {
            channel.close(promise: nil)
            return
        }
        let wanted = demand[lease.target, default: PoolDemand()].released(at: now())
        let usable = reusable && channel.isActive
        if usable, let waiter = waiting[lease.target]?.popFirst() {
            // A request is waiting for a connection: this one, at once.
            demand[lease.target, default: PoolDemand()].acquired(at: now())
            waiter.succeed(
                UpstreamLease(
                    channel: channel, responses: lease.responses, target: lease.target, reused: true,
                    httpHandlers: lease.httpHandlers))
            return
        }
        guard usable, idle[lease.target, default: []].count < min(wanted, maxIdlePerEndpoint) else {
            channel.close(promise: nil)
            serveWaiters(lease.target)
            return
        }
        idle[lease.target, default: []].append(
            UpstreamLease(
                channel: channel, responses: lease.responses, target: lease.target, reused: true,
                httpHandlers: lease.httpHandlers))
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } + shared.count }

    /// The endpoint's shared HTTP/2 connection, while it is open and the peer has not said GOAWAY.
    private func usableShared(_ target: EndpointTarget) -> HTTP2Session? {
        guard let connection = shared[target], let session = connection.http2 else { return nil }
        if connection.channel.isActive, !session.goingAway { return session }
        shared[target] = nil
        return nil
    }

    /// Remembers what a new connection speaks; an HTTP/2 one becomes the endpoint's shared connection
    /// unless a live one is there already (then false).
    func adopt(_ connection: UpstreamConnection, target: EndpointTarget) -> Bool {
        speaksHTTP2[target] = connection.http2 != nil
        guard connection.http2 != nil else {
            // Once per connection (not per release: a keep-alive connection is released once per request,
            // and a callback each time would grow its close future without bound).
            let channel = connection.channel
            open[target, default: 0] += 1
            channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
                guard let self else { return }
                self.idle[target]?.removeAll { $0.channel === channel }
                self.open[target, default: 1] -= 1
                if self.open[target] == 0 { self.open[target] = nil }
                self.serveWaiters(target)
            }
            return false
        }
        guard usableShared(target) == nil else { return false }
        shared[target] = connection
        let channel = connection.channel
        channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
            if self?.shared[target]?.channel === channel { self?.shared[target] = nil }
        }
        return true
    }
}
