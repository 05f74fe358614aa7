import MeshCore
import MeshFrontDoor
import NIOCore
import NIOExtras
import NIOPosix

/// A listening socket with the options every sidecar listener shares, behind its front door (`gate`: the
/// connection cap, the handshake and idle timeouts, the backlog). `initialize` builds each accepted
/// connection's pipeline (the direction's assembly). With `drain`, the listener and its connections take part
/// in draining: stop accepting, finish in-flight requests, then close.
enum Listener {
    /// A plaintext listener: the front door's guard goes first, a connection's first byte proves it.
    static func bind(
        _ address: HostPort, group: any EventLoopGroup, gate: ConnectionGate, drain: DrainGroup? = nil,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        try await bind(address, group: group, gate: gate, tls: false, drain: drain) { channel, guardHandler in
            try channel.pipeline.syncOperations.addHandler(guardHandler)
            try initialize(channel)
        }
    }

    /// A TLS listener: `initialize` places the front door's guard right after TLS, where the completed
    /// handshake proves a connection; `onHandshakeFailure` hears of handshakes that failed.
    static func bindTLS(
        _ address: HostPort, group: any EventLoopGroup, gate: ConnectionGate, drain: DrainGroup? = nil,
        onHandshakeFailure: @escaping @Sendable (any Error) -> Void,
        initialize: @escaping @Sendable (any Channel, _ guardHandler: any ChannelHandler) throws -> Void
    ) async throws -> any Channel {
        try await bind(
            address, group: group, gate: gate, tls: true, onHandshakeFailure: onHandshakeFailure, drain: drain,
            initialize: initialize)
    }

    private static func bind(
        _ address: HostPort, group: any EventLoopGroup, gate: ConnectionGate, tls: Bool,
        onHandshakeFailure: (@Sendable (any Error) -> Void)? = nil, drain: DrainGroup?,
        initialize: @escaping @Sendable (any Channel, any ChannelHandler) throws -> Void
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                FrontDoor.configureListener(channel, gate: gate).flatMapThrowing {
                    if let drain {
                        try channel.pipeline.syncOperations.addHandler(
                            drain.makeHelper().makeServerChannelHandler(channel: channel))
                    }
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try initialize(
                        channel, FrontDoor.guardHandler(gate: gate, tls: tls, onHandshakeFailure: onHandshakeFailure))
                }
            }
            .bind(host: address.host, port: address.port).get()
    }
}
