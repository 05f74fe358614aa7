import MeshCore
import NIOCore
import NIOExtras
import NIOPosix

/// A listening socket with the options every sidecar listener shares; `initialize` builds each
/// accepted connection's pipeline (the direction's assembly). With `drain`, the listener and its
/// connections take part in draining: stop accepting, finish in-flight requests, then close.
enum Listener {
    static func bind(
        _ address: HostPort,
        group: any EventLoopGroup,
        drain: DrainGroup? = nil,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let drain {
                        try channel.pipeline.syncOperations.addHandler(
                            drain.makeHelper().makeServerChannelHandler(channel: channel))
                    }
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try initialize(channel) }
            }
            .bind(host: address.host, port: address.port).get()
    }
}
