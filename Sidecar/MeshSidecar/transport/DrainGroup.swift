import NIOConcurrencyHelpers
import NIOCore
import NIOExtras

/// The listeners that drain together on shutdown. A `ServerQuiescingHelper` tracks exactly one server
/// channel (its first), so each listener gets its own and this group quiesces them all at once.
final class DrainGroup: Sendable {
    private let group: any EventLoopGroup
    private let helpers = NIOLockedValueBox<[ServerQuiescingHelper]>([])

    init(group: any EventLoopGroup) { self.group = group }

    /// A helper for one more listener.
    func makeHelper() -> ServerQuiescingHelper {
        let helper = ServerQuiescingHelper(group: group)
        helpers.withLockedValue { $0.append(helper) }
        return helper
    }

    /// Stops accepting on every listener and completes when every accepted connection has closed (each
    /// after its in-flight request).
    /// The helpers are handed over, not kept: a `ServerQuiescingHelper`'s deinit schedules on the loop, so none
    /// may outlive the event loops (it did when a finished service, freed on a worker thread after the loops
    /// stopped, held the last reference: "Cannot schedule tasks on an EventLoop that has already shut down").
    func drain() -> EventLoopFuture<Void> {
        let loop = group.next()
        let futures = release().map { helper in
            let promise = loop.makePromise(of: Void.self)
            helper.initiateShutdown(promise: promise)
            return promise.futureResult
        }
        return EventLoopFuture.andAllComplete(futures, on: loop)
    }

    /// Lets go of every helper (to call before the loops stop, whether or not `drain` ran).
    @discardableResult
    func release() -> [ServerQuiescingHelper] {
        helpers.withLockedValue { all in
            defer { all = [] }
            return all
        }
    }
}
