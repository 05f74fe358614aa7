import Logging
import MeshControlClient
import MeshCore
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Registers this instance once the listeners are up (retrying while the control plane is away) and
/// deregisters on drain.
struct RegistrationService: Service {
    let tls: TLSState
    let control: HostPort
    let service: ServiceName
    let advertise: HostPort
    let ready: NIOLockedValueBox<Bool>
    let logger: Logger

    func run() async throws {
        var attempt = 0
        while !Task.isCancelledOrShuttingDown {
            do {
                try await DiscoveryClient.register(
                    control: control, identity: tls.current.identity, service: service, advertise: advertise)
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

/// Owns the listening sockets; closes them on shutdown.
struct ListenerService: Service {
    let listeners: [any Channel]
    let cache: EndpointCache

    func run() async throws {
        try? await gracefulShutdown()
        cache.finish()
        for listener in listeners { try? await listener.close() }
    }
}
