import MeshIdentity
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// What runs over an upstream connection once it is open.
enum UpstreamWire: Sendable {
    /// Nothing: bytes for a relay.
    case bytes
    /// HTTP/1.1 client handlers.
    case http1
    /// HTTP/2 by prior knowledge (h2c to an app declared `http2`).
    case http2
    /// Whatever ALPN settled: `h2` or `http/1.1` (the hop between sidecars).
    case negotiated
}

/// An open upstream connection: for HTTP/2, requests open streams through `http2`; for HTTP/1.1, `http1` holds
/// its client handlers.
struct UpstreamConnection: @unchecked Sendable {
    let channel: any Channel
    var http2: HTTP2Session? = nil
    var http1: HTTPClientSetup.Handlers? = nil
}

/// Opens a connection to an endpoint, ready for its wire: for mTLS, only once the handshake has completed
/// and the peer's identity verified. Fails with `ProxyError`. `timeout` bounds TCP connect and TLS handshake
/// together: past it the connection is closed (a peer that accepts and never answers holds nothing of ours).
protocol UpstreamConnector: Sendable {
    func connect(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<UpstreamConnection>
    /// An HTTP/1.1 connection of its own, for a request that upgrades it (WebSocket) into a tunnel.
    func connectForUpgrade(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<UpstreamConnection>
}

extension UpstreamConnector {
    /// With the relays' connect timeout (opaque TCP has no policy of its own yet).
    func connect(_ target: EndpointTarget, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamConnection> {
        connect(target, timeout: .seconds(5), on: eventLoop)
    }
}

extension UpstreamConnection {
    /// Installs the wire's handlers on a connected (and, for TLS, verified) channel. Runs on its event loop,
    /// before any response byte can arrive.
    static func configure(_ channel: any Channel, wire: UpstreamWire, alpn: String?) throws -> UpstreamConnection {
        let ops = channel.pipeline.syncOperations
        switch wire {
        case .bytes:
            return UpstreamConnection(channel: channel)
        case .http2:
            return UpstreamConnection(channel: channel, http2: try HTTP2ClientSetup.configure(channel))
        case .negotiated where alpn == "h2":
            return UpstreamConnection(channel: channel, http2: try HTTP2ClientSetup.configure(channel))
        case .http1, .negotiated:
            return UpstreamConnection(channel: channel, http1: try HTTPClientSetup.configure(ops))
        }
    }
}

/// Plain TCP to the local app.
struct PlainUpstreamConnector: UpstreamConnector {
    var wire = UpstreamWire.http1

    func connectForUpgrade(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<UpstreamConnection>
    {
        PlainUpstreamConnector(wire: .http1).connect(target, timeout: timeout, on: eventLoop)
    }

    func connect(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<UpstreamConnection>
    {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: target.address.host, port: target.address.port)
            .flatMapErrorThrowing { error in
                throw ProxyError(.connectFailed, "cannot connect to app at \(target.address): \(error)")
            }
            .flatMapThrowing { [wire] channel in
                do { return try UpstreamConnection.configure(channel, wire: wire, alpn: nil) } catch {
                    channel.close(promise: nil)
                    throw error
                }
            }
    }
}

/// mTLS to a peer sidecar, requiring exactly the target's SPIFFE ID.
struct MTLSUpstreamConnector: UpstreamConnector {
    let tls: TLSState
    var metrics: SidecarMetrics?
    /// `.negotiated` for HTTP (offers h2 and http/1.1), `.http1` (offers only http/1.1), `.bytes` for a relay
    /// (offers no ALPN).
    var wire = UpstreamWire.negotiated

    func connectForUpgrade(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<UpstreamConnection>
    {
        MTLSUpstreamConnector(tls: tls, metrics: metrics, wire: .http1).connect(target, timeout: timeout, on: eventLoop)
    }

    func connect(_ target: EndpointTarget, timeout: TimeAmount, on eventLoop: any EventLoop)
        -> EventLoopFuture<UpstreamConnection>
    {
        guard let expected = target.identity else { preconditionFailure("mTLS target without identity: \(target)") }
        let context =
            switch wire {
            case .bytes: tls.current.relayClientContext
            case .http1: tls.current.http1ClientContext
            case .negotiated, .http2: tls.current.clientContext
            }
        let failure = NIOLockedValueBox<PeerVerificationFailure?>(nil)
        let callback = tls.verifier(onFailure: { f in failure.withLockedValue { $0 = f } }).callback(.exactly(expected))
        let handshake = eventLoop.makePromise(of: String?.self)
        let deadline = NIODeadline.now() + timeout
        let expired = NIOLockedValueBox(false)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ssl = try NIOSSLClientHandler(
                        context: context, serverHostname: nil, customVerificationCallbackWithMetadata: callback)
                    try channel.pipeline.syncOperations.addHandler(ssl)
                    try channel.pipeline.syncOperations.addHandler(TLSRecordCoalescer())
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(promise: handshake))
                }
            }
            .connect(host: target.address.host, port: target.address.port)
            .flatMapError { error in
                handshake.fail(error)
                return eventLoop.makeFailedFuture(ProxyError(.connectFailed, "cannot connect to \(target): \(error)"))
            }
            .flatMap { [wire] channel in
                // The handshake gets what is left of the connect timeout; then the connection is closed, and the
                // failure is the timeout, not the handshake's.
                let expiry = channel.eventLoop.scheduleTask(deadline: deadline) {
                    expired.withLockedValue { $0 = true }
                    channel.close(promise: nil)
                }
                handshake.futureResult.whenComplete { _ in expiry.cancel() }
                // Runs inline when the handshake completes, so the wire's handlers are in place before the
                // first decrypted byte is passed on.
                return handshake.futureResult.flatMapThrowing { [metrics] alpn in
                    let connection = try UpstreamConnection.configure(channel, wire: wire, alpn: alpn)
                    metrics?.peerConnectionOpened(
                        wire == .bytes ? "tcp" : connection.http2 == nil ? "http/1.1" : "h2")
                    return connection
                }.flatMapError { [metrics] error in
                    channel.close(promise: nil)
                    if error is ProxyError { return eventLoop.makeFailedFuture(error) }
                    if expired.withLockedValue({ $0 }) {
                        return eventLoop.makeFailedFuture(
                            ProxyError.timedOut(
                                .connect,
                                "no TLS handshake with \(target) within the connect timeout (\(timeout.nanoseconds / 1_000_000) ms)"
                            ))
                    }
                    metrics?.handshakeFailed(
                        .outbound, TLSFailure.reason(error, verification: failure.withLockedValue { $0 }))
                    if let f = failure.withLockedValue({ $0 }) {
                        if case .identityMismatch = f.reason {
                            return eventLoop.makeFailedFuture(ProxyError(.tlsPeerIdentityMismatch, f.detail))
                        }
                        return eventLoop.makeFailedFuture(ProxyError(.tlsHandshakeFailed, f.detail))
                    }
                    return eventLoop.makeFailedFuture(
                        ProxyError(.tlsHandshakeFailed, "TLS handshake with \(target) failed: \(error)"))
                }
            }
    }
}

/// Completes a promise with the ALPN result when the TLS handshake finishes, or fails it if the connection
/// errors or closes first.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<String?>
    private var done = false

    init(promise: EventLoopPromise<String?>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let alpn) = event as? TLSUserEvent, !done {
            done = true
            // The promise's callbacks add the wire's handlers behind this one; then the event moves on to
            // them, and this handler steps aside.
            promise.succeed(alpn)
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done { done = true; promise.fail(error) }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { done = true; promise.fail(ChannelError.ioOnClosedChannel) }
        context.fireChannelInactive()
    }
}
