import MeshCore
import NIOCore
import NIOPosix

/// The front door of every listener, in the two places a bootstrap offers: the listening socket (its backlog,
/// and a slot under the cap for each accepted connection before anything is built for it) and each accepted
/// connection (its guard against silence).
public enum FrontDoor {
    /// For a server channel initializer: the listen backlog (set before the socket listens) and the cap.
    public static func configureListener(_ channel: any Channel, gate: ConnectionGate) -> EventLoopFuture<Void> {
        channel.setOption(.backlog, value: gate.limits.backlog).flatMapThrowing {
            try channel.pipeline.syncOperations.addHandler(AcceptGate(gate: gate), position: .first)
        }
    }

    /// For a child channel initializer: the guard to place right after TLS, or first on a plaintext listener.
    public static func guardHandler(
        gate: ConnectionGate, tls: Bool, onHandshakeFailure: (@Sendable (any Error) -> Void)? = nil
    ) -> any ChannelHandler {
        ConnectionGuard(gate: gate, proof: tls ? .tlsHandshake : .firstByte, onHandshakeFailure: onHandshakeFailure)
    }
}

/// On the listening socket, ahead of the bootstrap's accept handler: each accepted connection takes a slot
/// (given back when it closes; at the cap, the oldest unproven connection is closed to make room) or, when the
/// listener is full of proven connections, is closed at once — before TLS, HTTP or gRPC handlers are built for it.
final class AcceptGate: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    private let gate: ConnectionGate

    init(gate: ConnectionGate) { self.gate = gate }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let accepted = unwrapInboundIn(data)
        guard gate.admit(accepted) else {
            accepted.close(promise: nil)
            return
        }
        let gate = self.gate
        accepted.closeFuture.whenComplete { _ in gate.release(accepted) }
        context.fireChannelRead(data)
    }
}
