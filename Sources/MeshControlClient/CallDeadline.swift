import GRPCCore
import MeshCore

/// A bound on one call to the control plane: past it the call is abandoned with `deadlineExceeded`, naming
/// the address that did not answer; gRPC failures become `ControlPlaneError`.
enum CallDeadline {
    static func run<R: Sendable>(
        timeout: Duration, control: HostPort, _ body: @Sendable @escaping () async throws -> R
    ) async throws -> R {
        do {
            return try await withThrowingTaskGroup(of: R.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw RPCError(
                        code: .deadlineExceeded, message: "control plane at \(control) did not answer within \(timeout)"
                    )
                }
                let result = try await group.next()!
                group.cancelAll()
                return result
            }
        } catch let error as RPCError {
            throw ControlPlaneError(error)
        }
    }
}
