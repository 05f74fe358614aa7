import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshIdentity
import ServiceLifecycle

/// Renews the workload certificate at the snapshot's random point in 60–90 % of its lifetime, persists it,
/// then swaps the TLS contexts; failures retry with backoff until the certificate expires.
struct CertificateRenewalService: Service {
    let tls: TLSState
    let session: ControlPlaneSession
    let dataDir: String
    let logger: Logger

    func run() async throws {
        var failures = 0
        while !Task.isCancelledOrShuttingDown {
            let snapshot = tls.current
            // At least a second between renewals, so a CA that issues nearly expired certificates cannot
            // make this loop spin.
            let wait = failures == 0 ? max(1, snapshot.renewAt.timeIntervalSinceNow) : min(30, pow(2, Double(failures)))
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
            } catch { return }
            if Task.isShuttingDownGracefully { return }
            do {
                let renewed = try await Enrolment.renew(session: session, current: snapshot.identity)
                try IdentityFiles.save(renewed, dataDir: dataDir)
                try tls.update(renewed)
                failures = 0
                logger.notice(
                    "certificate renewed",
                    metadata: [
                        "identity": "\(renewed.spiffeID)", "serial": "\(renewed.serialHex)",
                        "not_after": "\(renewed.notAfter)",
                    ])
            } catch {
                failures += 1
                logger.warning(
                    "certificate renewal failed; retrying",
                    metadata: [
                        "error": "\(error)", "attempt": "\(failures)", "expires": "\(snapshot.identity.notAfter)",
                    ])
            }
        }
    }
}

extension Task where Success == Never, Failure == Never {
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
