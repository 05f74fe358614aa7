import MeshCore
import NIOCore
import NIOPosix

/// One connection pool per event loop of the group, all using one connector.
final class PoolSet: Sendable {
    let group: MultiThreadedEventLoopGroup
    private let pools: [ObjectIdentifier: ConnectionPool]

    init(group: MultiThreadedEventLoopGroup, connector: any UpstreamConnector) {
        self.group = group
        var pools: [ObjectIdentifier: ConnectionPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = ConnectionPool(eventLoop: loop, connector: connector)
        }
        self.pools = pools
    }

    func pool(for eventLoop: any EventLoop) -> ConnectionPool {
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop outside the sidecar's group")
        }
        return pool
    }
}
