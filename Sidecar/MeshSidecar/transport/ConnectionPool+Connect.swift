import NIOCore

/// New connections: opened through the connector under the connect timeout (which closes a connection still in
/// its handshake, or an HTTP/2 one still waiting for the peer's SETTINGS, when it runs out), and adopted by the pool.
extension ConnectionPool {
    /// A new HTTP/1.1 connection of its own, for a request that upgrades it into a tunnel; never pooled.
    func acquireForUpgrade(_ target: EndpointTarget, connectTimeout: TimeAmount = defaultConnectTimeout)
        -> EventLoopFuture<UpstreamLease>
    {
        let attempt = ConnectAttempt()
        let connecting = connector.connectForUpgrade(target, timeout: connectTimeout, on: eventLoop).map {
            connection in
            attempt.channel = connection.channel
            return connection
        }
        return within(connectTimeout, target, connecting, attempt).flatMapThrowing { connection in
            guard let http1 = connection.http1 else { preconditionFailure("upgrade connection without HTTP/1.1") }
            return UpstreamLease(
                channel: connection.channel, responses: http1.responses, target: target, reused: false,
                httpHandlers: http1.http, poolable: false)
        }
    }

    /// A connect that fails with a `connect` timeout if it has not completed in time; the connection, if it is
    /// already there (an HTTP/2 peer that has not sent its SETTINGS), or once it completes, is closed.
    func within(
        _ timeout: TimeAmount, _ target: EndpointTarget, _ connecting: EventLoopFuture<UpstreamConnection>,
        _ attempt: ConnectAttempt
    ) -> EventLoopFuture<UpstreamConnection> {
        let promise = eventLoop.makePromise(of: UpstreamConnection.self)
        let timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            attempt.expired = true
            attempt.channel?.close(promise: nil)
            promise.fail(
                ProxyError.timedOut(
                    .connect,
                    "no connection to \(target) within the connect timeout (\(timeout.nanoseconds / 1_000_000) ms)"))
        }
        connecting.assumeIsolated().whenComplete { result in
            timer.cancel()
            switch result {
            case .success(let connection):
                // Too late: the request has moved on (or failed); nobody will use this connection.
                if attempt.expired { connection.channel.close(promise: nil) } else { promise.succeed(connection) }
            case .failure(let error):
                if !attempt.expired { promise.fail(error) }
            }
        }
        return promise.futureResult
    }

    /// Always on a new connection.
    func connectFresh(_ target: EndpointTarget, timeout: TimeAmount) -> EventLoopFuture<UpstreamLease> {
        connectsInFlight[target, default: 0] += 1
        let attempt = ConnectAttempt()
        let ready = connector.connect(target, timeout: timeout, on: eventLoop).flatMap {
            (connection: UpstreamConnection) -> EventLoopFuture<UpstreamConnection> in
            attempt.channel = connection.channel
            if attempt.expired {
                connection.channel.close(promise: nil)
                return self.eventLoop.makeFailedFuture(ProxyError.timedOut(.connect, "\(target): too late"))
            }
            // An HTTP/2 connection is used once the peer's SETTINGS took effect (its frame size, its limits).
            guard let session = connection.http2 else { return self.eventLoop.makeSucceededFuture(connection) }
            return session.ready.map { connection }.flatMapErrorThrowing { error in
                connection.channel.close(promise: nil)
                throw error
            }
        }
        let connection = within(timeout, target, ready, attempt).map { connection in
            (connection, self.adopt(connection, target: target))
        }
        connection.whenComplete { _ in
            self.connectsInFlight[target, default: 1] -= 1
            self.serveWaiters(target)
        }
        if speaksHTTP2[target] != false, connecting[target] == nil {
            connecting[target] = connection.map(\.0)
            connection.whenComplete { _ in self.connecting[target] = nil }
        }
        return connection.flatMap { connection, shared in
            guard let session = connection.http2 else {
                guard let http1 = connection.http1 else { preconditionFailure("HTTP connection without a codec") }
                self.demand[target, default: PoolDemand()].acquired(at: self.now())
                return self.eventLoop.makeSucceededFuture(
                    UpstreamLease(
                        channel: connection.channel, responses: http1.responses, target: target, reused: false,
                        httpHandlers: http1.http))
            }
            let stream = session.openStream(to: target, reused: false)
            if !shared {
                // Another connection already serves this endpoint: this one carries its one stream and closes.
                stream.whenComplete { result in
                    guard case .success(let lease) = result else { return connection.channel.close(promise: nil) }
                    lease.channel.closeFuture.whenComplete { _ in connection.channel.close(promise: nil) }
                }
            }
            return stream
        }
    }
}

/// One connect under its timeout: whether the timeout fired first, and the connection once there is one (to
/// close it then). Touched only on the pool's event loop.
final class ConnectAttempt: @unchecked Sendable {
    var expired = false
    var channel: (any Channel)?
}
