import Logging
import MeshControlClient
import MeshCore
import MeshFrontDoor
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import ServiceLifecycle

/// Registers this instance once the listeners are up and keeps its lease: before every renewal (at a third
/// of the lease the control plane grants) it checks the app and reports its health, so an app that stops
/// answering leaves the served set within one renewal, and a dead sidecar's instance within one lease.
/// Retries while the control plane is away; deregisters on drain.
struct RegistrationService: Service {
    let session: ControlPlaneSession
    let service: ServiceName
    let advertise: HostPort
    let labels: [String: String]
    let app: HostPort
    let healthCheck: AppHealthCheck
    let group: any EventLoopGroup
    let ready: NIOLockedValueBox<Bool>
    let logger: Logger

    func run() async throws {
        var attempt = 0
        var registered = false
        var checked = false
        var wasHealthy = true
        var lease = Duration.seconds(15)
        while !Task.isCancelledOrShuttingDown {
            let problem = await healthCheck.run(against: app, group: group)
            if !checked || (problem == nil) != wasHealthy {
                if let problem {
                    logger.warning(
                        "app failed its health check; not served to callers",
                        metadata: ["check": "\(healthCheck)", "app": "\(app)", "reason": "\(problem)"])
                } else if checked {
                    logger.notice("app passes its health check again", metadata: ["check": "\(healthCheck)"])
                }
                checked = true
                wasHealthy = problem == nil
            }
            let pause: Duration
            do {
                lease = try await DiscoveryClient.register(
                    session: session, service: service, advertise: advertise, labels: labels,
                    healthy: problem == nil)
                if !registered {
                    registered = true
                    ready.withLockedValue { $0 = true }
                    logger.notice(
                        "registered",
                        metadata: ["service": "\(service)", "endpoint": "\(advertise)", "lease": "\(lease)"])
                }
                attempt = 0
                pause = lease / 3
            } catch {
                attempt += 1
                logger.warning(
                    registered ? "lease renewal failed; retrying" : "registration failed; retrying",
                    metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                pause = min(lease / 3, .milliseconds(200 * attempt))
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
        // Drain: not ready, then leave discovery so peers stop picking us.
        ready.withLockedValue { $0 = false }
        do {
            try await DiscoveryClient.deregister(session: session, service: service, advertise: advertise)
            logger.notice("deregistered", metadata: ["service": "\(service)"])
        } catch {
            logger.warning("deregistration failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Runs the sidecar's connection to the control plane; on shutdown it lets the last calls (the
/// deregistration) finish, then closes it.
struct ControlPlaneSessionService: Service {
    let session: ControlPlaneSession

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await session.run() }
            try? await gracefulShutdown()
            session.close()
        }
    }
}

/// Owns the listening sockets. On shutdown it drains (services stop in reverse order, so by now this
/// instance is not ready and has left discovery): the data listeners stop accepting, every connection
/// finishes its in-flight request and closes, bounded by the drain timeout; then the admin listener closes.
/// Until then, once a second, memory goes back to the system after a burst of connections has closed.
struct ListenerService: Service {
    let drain: DrainGroup
    let admin: any Channel
    let group: any EventLoopGroup
    let drainTimeout: Duration
    let cache: EndpointCache
    let gates: @Sendable () -> [ConnectionGate]
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .seconds(1))
                MemoryAfterBursts.reclaim(gates())
            }
        }
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
