import Foundation
import Logging
import MeshCore
import MeshIdentity
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Standalone mode: reloads the identity when any of its files changes (as SPIRE's or Vault's agents
/// rewrite them), checking the new set fully before swapping it in; a bad or half-written set is logged
/// and the current identity kept.
struct IdentityFileWatcher: Service {
    let paths: IdentityFilePaths
    let service: ServiceName
    let tls: TLSState
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var last = stamp()
        while !Task.isCancelledOrShuttingDown {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
            let now = stamp()
            guard now != last else { continue }
            last = now
            do {
                let identity = try IdentityBootstrap.load(paths, service: service, trustDomain: tls.trustDomain)
                try tls.update(identity)
                logger.notice(
                    "identity reloaded from files",
                    metadata: ["serial": "\(identity.serialHex)", "not_after": "\(identity.notAfter)"])
            } catch {
                logger.warning(
                    "identity files changed but cannot be used; keeping the current identity",
                    metadata: ["error": "\(error)"])
            }
        }
    }

    /// Modification time, size and inode of each file: a rename-into-place changes the inode.
    private func stamp() -> [String] {
        [paths.cert, paths.key, paths.bundle].map { path in
            var st = stat()
            guard stat(path, &st) == 0 else { return "missing" }
            return "\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec):\(st.st_mtim.tv_nsec)"
        }
    }
}
