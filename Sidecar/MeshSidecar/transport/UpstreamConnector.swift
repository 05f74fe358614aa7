import MeshIdentity
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// Opens a connection to an endpoint, ready for HTTP/1.1 requests: for mTLS, only once the handshake has
/// completed and the peer's identity verified. Fails with `ProxyError`.
protocol UpstreamConnector: Sendable {
    func connect(_ target: EndpointTarget, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel>
}

/// Plain TCP to the local app.
struct PlainUpstreamConnector: UpstreamConnector {
    /// What runs over the connection: HTTP/1.1 client handlers, or nothing (bytes for a relay).
    var speaksHTTP = true

    func connect(_ target: EndpointTarget, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if speaksHTTP { try HTTPClientSetup.configure(channel.pipeline.syncOperations) }
                }
            }
            .connect(host: target.address.host, port: target.address.port)
            .flatMapErrorThrowing { error in
                throw ProxyError(.connectFailed, "cannot connect to app at \(target.address): \(error)")
            }
    }
}

/// mTLS to a peer sidecar, requiring exactly the target's SPIFFE ID.
struct MTLSUpstreamConnector: UpstreamConnector {
    let tls: TLSState
    var metrics: SidecarMetrics?
    /// What runs inside the TLS: HTTP/1.1 client handlers, or nothing (bytes for a relay).
    var speaksHTTP = true

    func connect(_ target: EndpointTarget, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        guard let expected = target.identity else { preconditionFailure("mTLS target without identity: \(target)") }
        let context = tls.current.clientContext
        let failure = NIOLockedValueBox<PeerVerificationFailure?>(nil)
        let callback = tls.verifier(onFailure: { f in failure.withLockedValue { $0 = f } }).callback(.exactly(expected))
        let handshake = eventLoop.makePromise(of: Void.self)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ssl = try NIOSSLClientHandler(
                        context: context, serverHostname: nil, customVerificationCallbackWithMetadata: callback)
                    try channel.pipeline.syncOperations.addHandler(ssl)
                    try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(promise: handshake))
                    if speaksHTTP { try HTTPClientSetup.configure(channel.pipeline.syncOperations) }
                }
            }
            .connect(host: target.address.host, port: target.address.port)
            .flatMapError { error in
                handshake.fail(error)
                return eventLoop.makeFailedFuture(ProxyError(.connectFailed, "cannot connect to \(target): \(error)"))
            }
            .flatMap { channel in
                handshake.futureResult.map { channel }.flatMapError { [metrics] error in
                    channel.close(promise: nil)
                    metrics?.handshakeFailed(.outbound)
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

/// Completes a promise when the TLS handshake finishes, or fails it if the connection errors or closes first.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<Void>
    private var done = false

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Pass the event on first: once removed, this handler's context no longer reaches the rest.
        context.fireUserInboundEventTriggered(event)
        if case .handshakeCompleted = event as? TLSUserEvent, !done {
            done = true
            promise.succeed(())
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
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
