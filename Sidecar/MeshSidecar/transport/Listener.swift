import MeshCore
import NIOCore
import NIOPosix

/// A listening socket with the options every sidecar listener shares; `initialize` builds each
/// accepted connection's pipeline (the direction's assembly).
enum Listener {
    static func bind(
        _ address: HostPort,
        group: any EventLoopGroup,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try initialize(channel) }
            }
            .bind(host: address.host, port: address.port).get()
    }
}
