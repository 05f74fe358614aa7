import NIOCore
import NIOPosix

/// One value per event loop of the group (a connection pool, the balancers), each used only on its loop.
final class PerEventLoop<Value: Sendable>: Sendable {
    let group: MultiThreadedEventLoopGroup
    private let values: [ObjectIdentifier: Value]

    init(group: MultiThreadedEventLoopGroup, _ make: (any EventLoop) -> Value) {
        self.group = group
        var values: [ObjectIdentifier: Value] = [:]
        for loop in group.makeIterator() { values[ObjectIdentifier(loop)] = make(loop) }
        self.values = values
    }

    subscript(_ eventLoop: any EventLoop) -> Value {
        guard let value = values[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop outside the sidecar's group")
        }
        return value
    }
}

/// One connection pool per event loop, all using one connector.
typealias PoolSet = PerEventLoop<ConnectionPool>

extension PerEventLoop where Value == ConnectionPool {
    convenience init(group: MultiThreadedEventLoopGroup, connector: any UpstreamConnector) {
        self.init(group: group) { ConnectionPool(eventLoop: $0, connector: connector) }
    }

    func pool(for eventLoop: any EventLoop) -> ConnectionPool { self[eventLoop] }
}
