import Logging
import MeshControlClient
import MeshCore
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import ServiceLifecycle

/// Registers this instance once the listeners are up (retrying while the control plane is away) and
/// deregisters on drain.
struct RegistrationService: Service {
    let tls: TLSState
    let control: HostPort
    let service: ServiceName
    let advertise: HostPort
    let labels: [String: String]
    let ready: NIOLockedValueBox<Bool>
    let logger: Logger

    func run() async throws {
        var attempt = 0
        while !Task.isCancelledOrShuttingDown {
            do {
                try await DiscoveryClient.register(
                    control: control, identity: tls.current.identity, service: service, advertise: advertise,
                    labels: labels)
                logger.notice("registered", metadata: ["service": "\(service)", "endpoint": "\(advertise)"])
                break
            } catch {
                attempt += 1
                logger.warning(
                    "registration failed; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                let delay = min(5000, 200 * attempt)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(delay)) }
            }
        }
        ready.withLockedValue { $0 = true }
        try? await gracefulShutdown()
        // Drain: not ready, then leave discovery so peers stop picking us.
        ready.withLockedValue { $0 = false }
        do {
            try await DiscoveryClient.deregister(
                control: control, identity: tls.current.identity, service: service, advertise: advertise)
            logger.notice("deregistered", metadata: ["service": "\(service)"])
        } catch {
            logger.warning("deregistration failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Owns the listening sockets. On shutdown it drains (services stop in reverse order, so by now this
/// instance is not ready and has left discovery): the data listeners stop accepting, every connection
/// finishes its in-flight request and closes, bounded by the drain timeout; then the admin listener closes.
struct ListenerService: Service {
    let drain: DrainGroup
    let admin: any Channel
    let group: any EventLoopGroup
    let drainTimeout: Duration
    let cache: EndpointCache
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        cache.finish()
        logger.notice(
            "draining: no new connections; waiting for in-flight requests", metadata: ["timeout": "\(drainTimeout)"])
        let drained = drain.drain()
        let finished = await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask { (try? await drained.get()) != nil }
            tasks.addTask {
                try? await Task.sleep(for: drainTimeout)
                return false
            }
            let first = await tasks.next() ?? false
            tasks.cancelAll()
            return first
        }
        logger.notice(finished ? "drained" : "drain timeout reached; closing remaining connections")
        try? await admin.close()
    }
}
