import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshCore
import MeshIdentity
import Synchronization
import X509

/// A workload's one connection to the control plane, shared by everything it asks of it: registration and
/// lease renewals, discovery watches, the policy stream, certificate renewal (Linkerd's proxy and Istio's
/// agent likewise keep one connection). Each call used to open its own mTLS connection, a TLS handshake and a
/// gRPC connection set-up per lease renewal; at 10,000 sidecars those handshakes were the control plane's
/// main load.
///
/// The connection presents the workload's current certificate. When `identity()` returns a renewed one,
/// the next call opens a new connection with it; the old one takes no new calls, lets those in flight
/// finish, and closes after `grace` (or when its certificate expires, if sooner), so long-lived streams move
/// over (their callers reconnect) and nothing keeps talking on a certificate that is about to expire.
///
/// `run()` owns the connections (no unstructured tasks): start it before the first call and keep it running
/// while calls are made; it returns after `close()` once the connections have drained, or at once on
/// cancellation, closing every connection.
public final class ControlPlaneSession: Sendable {
    public let control: HostPort
    private let identity: @Sendable () -> WorkloadIdentity
    private let grace: Duration
    private let state = Mutex(State())
    private let lifecycle: AsyncStream<Connection>
    private let opened: AsyncStream<Connection>.Continuation

    /// One connection: its client, the certificate it presents, and a signal that ends it once retired.
    private struct Connection: Sendable {
        let client: GRPCClient<HTTP2ClientTransport.Posix>
        let leaf: Certificate
        let retirement: AsyncStream<Void>
        let retire: AsyncStream<Void>.Continuation
    }

    private struct State {
        var current: Connection?
        var closed = false
    }

    public init(
        control: HostPort, grace: Duration = .seconds(10), identity: @Sendable @escaping () -> WorkloadIdentity
    ) {
        self.control = control
        self.grace = grace
        self.identity = identity
        (lifecycle, opened) = AsyncStream.makeStream(of: Connection.self)
    }

    /// The client for the current certificate, opening its connection if the certificate changed.
    public func client() throws -> GRPCClient<HTTP2ClientTransport.Posix> {
        let id = identity()
        return try state.withLock { state in
            if let current = state.current, current.leaf == id.chain[0] { return current.client }
            guard !state.closed else {
                throw ControlPlaneError(
                    RPCError(code: .unavailable, message: "the connection to the control plane is shut down"))
            }
            let transport = try ControlPlaneClient(
                address: control, trustDomain: id.spiffeID.trustDomain, trust: .bundle(id.bundle), chain: id.chain,
                key: id.key
            ).makeTransport()
            let (retirement, retire) = AsyncStream.makeStream(of: Void.self)
            let connection = Connection(
                client: GRPCClient(transport: transport), leaf: id.chain[0], retirement: retirement, retire: retire)
            state.current?.retire.finish()
            state.current = connection
            opened.yield(connection)
            return connection.client
        }
    }

    /// Runs one call with a deadline; gRPC failures become `ControlPlaneError`.
    public func call<R: Sendable>(
        timeout: Duration, _ body: @Sendable @escaping (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        let client = try client()
        return try await CallDeadline.run(timeout: timeout, control: control) { try await body(client) }
    }

    /// Keeps the connections running until `close()` (then they drain) or cancellation (then they close now).
    public func run() async {
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await connection in lifecycle {
                    group.addTask { await self.serve(connection) }
                }
            }
        } onCancel: {
            close()
        }
    }

    /// No new connections; the current one finishes its calls and closes after `grace`.
    public func close() {
        state.withLock { state in
            state.closed = true
            state.current?.retire.finish()
            state.current = nil
        }
        opened.finish()
    }

    private func serve(_ connection: Connection) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await connection.client.runConnections() }
            group.addTask {
                for await _ in connection.retirement {}
                connection.client.beginGracefulShutdown()
                // Never past the old certificate's expiry.
                let left = connection.leaf.notValidAfter.timeIntervalSinceNow
                try? await Task.sleep(for: min(self.grace, .milliseconds(Int64(max(0, left) * 1000))))
            }
            // Whichever ends first: the connection closed by itself (drained after retirement), or the grace
            // ran out and what still runs on it is cut.
            await group.next()
            group.cancelAll()
        }
    }
}
