import Logging
import MeshControlClient
import MeshCore
import ServiceLifecycle

/// Keeps the policy stream to the control plane open (reconnecting with backoff) and applies what it pushes:
/// each version is checked, persisted and then acknowledged, or refused with the reason.
struct PolicySyncService: Service {
    let policy: SidecarPolicy
    let session: ControlPlaneSession
    let advertise: HostPort
    let cache: EndpointCache
    let upstreams: [ServiceName]
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await PolicyStreamClient.run(
                        session: session, running: policy.current.version,
                        advertise: advertise,
                        destinations: {
                            Set(cache.allSnapshots().map(\.service.value) + upstreams.map(\.value))
                        },
                        onPolicy: { pushed in
                            if let refusal = policy.adopt(pushed) {
                                logger.error(
                                    "policy version refused; keeping the last good one",
                                    metadata: [
                                        "version": "\(pushed.version)", "running": "\(policy.current.version)",
                                        "reason": "\(refusal)",
                                    ])
                                return refusal
                            }
                            logger.notice(
                                "policy applied",
                                metadata: ["version": "\(pushed.version)", "documents": "\(pushed.documents.count)"])
                            return nil
                        })
                    failures = 0  // the control plane ended it (a drain): reconnect soon
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("policy stream failed; retrying", metadata: ["error": "\(error)"])
                }
                failures += 1
                try? await Task.sleep(for: .milliseconds(min(5000, 250 * (1 << min(failures, 5)))))
            }
        }
    }
}
