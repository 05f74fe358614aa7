import NIOCore
import NIOHTTP2

/// Upstream connections per endpoint, for one event loop (and used only on it, so no locks). An endpoint
/// that speaks HTTP/2 gets one shared connection and each request opens a stream on it; one that speaks
/// HTTP/1.1 gets keep-alive connections, one exchange at a time. Either way a request receives a channel
/// that takes `HTTPClientRequestPart`s and ends in an `UpstreamResponseHandler`.
final class ConnectionPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let connector: any UpstreamConnector
    private var idle: [EndpointTarget: [any Channel]] = [:]
    /// The HTTP/2 connection per endpoint that new streams go to.
    private var shared: [EndpointTarget: UpstreamConnection] = [:]
    /// A connect in flight to an endpoint not known to speak HTTP/1.1 only (new, or HTTP/2 last time):
    /// requests wait for it rather than each opening a connection of its own, and share it if it is HTTP/2.
    private var connecting: [EndpointTarget: EventLoopFuture<UpstreamConnection>] = [:]
    /// What each endpoint's last new connection spoke: true for HTTP/2.
    private var speaksHTTP2: [EndpointTarget: Bool] = [:]
    private let maxIdlePerEndpoint: Int

    init(eventLoop: any EventLoop, connector: any UpstreamConnector, maxIdlePerEndpoint: Int = 64) {
        self.eventLoop = eventLoop
        self.connector = connector
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
    }

    /// A channel for one exchange: a stream on a live HTTP/2 connection or an idle HTTP/1.1 connection
    /// (`reused`), else one on a new connection.
    func acquire(_ target: EndpointTarget) -> EventLoopFuture<(channel: any Channel, reused: Bool)> {
        eventLoop.preconditionInEventLoop()
        if let session = usableShared(target) { return session.openStream().map { ($0, true) } }
        if let pending = connecting[target] { return stream(on: pending, target: target).map { ($0, false) } }
        while let channel = idle[target]?.popLast() {
            if channel.isActive { return eventLoop.makeSucceededFuture((channel, true)) }
        }
        return connectFresh(target).map { ($0, false) }
    }

    /// For a replay after a reused connection failed: never an idle HTTP/1.1 connection (it may be just as
    /// stale), but a stream on an HTTP/2 connection that is live or being opened, so the requests of one
    /// failed connection move together to one new connection.
    func acquireFresh(_ target: EndpointTarget) -> EventLoopFuture<any Channel> {
        eventLoop.preconditionInEventLoop()
        if let session = usableShared(target) { return session.openStream() }
        if let pending = connecting[target] { return stream(on: pending, target: target) }
        return connectFresh(target)
    }

    /// A new HTTP/1.1 connection of its own, for a request that upgrades it into a tunnel; never pooled.
    func acquireForUpgrade(_ target: EndpointTarget) -> EventLoopFuture<any Channel> {
        connector.connectForUpgrade(target, on: eventLoop).map(\.channel)
    }

    private func stream(on pending: EventLoopFuture<UpstreamConnection>, target: EndpointTarget)
        -> EventLoopFuture<any Channel>
    {
        pending.flatMap { connection in
            guard let session = connection.http2 else { return self.connectFresh(target) }
            return session.openStream()
        }
    }

    /// Always on a new connection.
    private func connectFresh(_ target: EndpointTarget) -> EventLoopFuture<any Channel> {
        let connection = connector.connect(target, on: eventLoop).map { connection in
            (connection, self.adopt(connection, target: target))
        }
        if speaksHTTP2[target] != false, connecting[target] == nil {
            connecting[target] = connection.map(\.0)
            connection.whenComplete { _ in self.connecting[target] = nil }
        }
        return connection.flatMap { connection, shared in
            guard let session = connection.http2 else {
                return self.eventLoop.makeSucceededFuture(connection.channel)
            }
            let stream = session.openStream()
            if !shared {
                // Another connection already serves this endpoint: this one carries its one stream and closes.
                stream.whenComplete { result in
                    guard case .success(let stream) = result else { return connection.channel.close(promise: nil) }
                    stream.closeFuture.whenComplete { _ in connection.channel.close(promise: nil) }
                }
            }
            return stream
        }
    }

    /// Gives a channel back after an exchange. An HTTP/1.1 connection that can carry another request
    /// waits in the idle list; an HTTP/2 stream closes itself when both sides ended, or is reset here.
    func release(_ channel: any Channel, target: EndpointTarget, reusable: Bool) {
        eventLoop.preconditionInEventLoop()
        if channel.parent != nil {
            if !reusable { channel.close(promise: nil) }
            return
        }
        guard reusable, channel.isActive, idle[target, default: []].count < maxIdlePerEndpoint else {
            channel.close(promise: nil)
            return
        }
        idle[target, default: []].append(channel)
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
    private func adopt(_ connection: UpstreamConnection, target: EndpointTarget) -> Bool {
        speaksHTTP2[target] = connection.http2 != nil
        guard connection.http2 != nil else {
            // Once per connection (not per release: a keep-alive connection is released once per request,
            // and a callback each time would grow its close future without bound).
            let channel = connection.channel
            channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
                self?.idle[target]?.removeAll { $0 === channel }
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
