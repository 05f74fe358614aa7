import NIOCore

/// Keep-alive connections per endpoint, for one event loop (and used only on it, so no locks): a request
/// takes an idle connection if one is open, else connects; a finished exchange gives it back.
final class ConnectionPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let connector: any UpstreamConnector
    private var idle: [EndpointTarget: [any Channel]] = [:]
    private let maxIdlePerEndpoint: Int

    init(eventLoop: any EventLoop, connector: any UpstreamConnector, maxIdlePerEndpoint: Int = 64) {
        self.eventLoop = eventLoop
        self.connector = connector
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
    }

    /// An idle connection (`reused`), else a new one.
    func acquire(_ target: EndpointTarget) -> EventLoopFuture<(channel: any Channel, reused: Bool)> {
        eventLoop.preconditionInEventLoop()
        while let channel = idle[target]?.popLast() {
            if channel.isActive { return eventLoop.makeSucceededFuture((channel, true)) }
        }
        return connectFresh(target).map { ($0, false) }
    }

    /// Always a new connection (for a replay after a reused one failed).
    func connectFresh(_ target: EndpointTarget) -> EventLoopFuture<any Channel> {
        connector.connect(target, on: eventLoop)
    }

    /// Returns a connection after an exchange; closes it instead if it cannot carry another request.
    func release(_ channel: any Channel, target: EndpointTarget, reusable: Bool) {
        eventLoop.preconditionInEventLoop()
        guard reusable, channel.isActive, idle[target, default: []].count < maxIdlePerEndpoint else {
            channel.close(promise: nil)
            return
        }
        idle[target, default: []].append(channel)
        channel.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
            self?.idle[target]?.removeAll { $0 === channel }
        }
    }

    var idleCount: Int { idle.values.reduce(0) { $0 + $1.count } }
}
