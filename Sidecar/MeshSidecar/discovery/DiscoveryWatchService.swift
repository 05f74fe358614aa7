import Logging
import MeshControlClient
import MeshCore
import ServiceLifecycle

/// Keeps one watch stream per destination in use, reconnecting with backoff; each child task lives in
/// this service's task group (no detached tasks). While the control plane is away the cache keeps its
/// last snapshot, so traffic keeps flowing.
struct DiscoveryWatchService: Service {
    let cache: EndpointCache
    let session: ControlPlaneSession
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for await service in cache.watchRequests {
                    group.addTask { await watchForever(service) }
                }
            }
        }
    }

    private func watchForever(_ service: ServiceName) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await DiscoveryClient.watch(session: session, service: service) {
                    snapshot in
                    do { try cache.update(snapshot) } catch {
                        logger.warning(
                            "cannot persist the endpoints; a restart without the control plane will not have them",
                            metadata: ["service": "\(service)", "error": "\(error)"])
                    }
                    logger.debug(
                        "endpoints updated",
                        metadata: [
                            "service": "\(service)", "count": "\(snapshot.endpoints.count)",
                            "revision": "\(snapshot.revision)",
                        ])
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning(
                    "discovery watch failed; retrying", metadata: ["service": "\(service)", "error": "\(error)"])
            }
            // A stream that delivered data and then ended resets the backoff.
            failures = cache.snapshot(service) == nil ? failures + 1 : 1
            try? await Task.sleep(for: .milliseconds(min(5000, 250 * (1 << min(failures, 5)))))
        }
    }
}
