import Foundation
import GRPCCore
import MeshAPI
import MeshControlClient
import MeshCore
import MeshIdentity
import Testing

/// The control plane's end of the sidecar connection: one connection per sidecar carries everything; a policy
/// stream that misbehaves (garbage, no hello, an ACK for a version never sent) is refused on its own while
/// everyone else carries on.
@Suite(.serialized)
struct ControlPlaneConnectionTests {
    @Test func aSidecarTalksToTheControlPlaneOverOneConnection() throws {
        // Leases of 3 s: the sidecar re-registers every second while we look.
        let mesh = try Mesh(controlFlags: ["--lease-ttl", "3s"])
        defer { mesh.stop() }
        let app = try mesh.p.startApp("orders", log: "orders-app.log")
        _ = try mesh.sidecar("orders", app: app)
        // The caller registers, renews its lease, watches `orders` and holds its policy stream.
        let (caller, binds) = try mesh.caller(binding: ["orders"])
        let r = try mesh.p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://\(binds["orders"]!)/orders"])
        #expect(r.status == 0, "\(r.output)")
        var seen: [Int] = []
        for _ in 0..<8 {
            seen.append(try mesh.controlConnections(from: caller.process))
            usleep(400_000)
        }
        #expect(seen.allSatisfy { $0 == 1 }, "connections to the control plane, sampled over 3 s: \(seen)")
    }

    @Test func aMisbehavingPolicyStreamIsRefusedAndNobodyElseNotices() async throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let app = try mesh.p.startApp("orders", log: "orders-app.log")
        _ = try mesh.sidecar("orders", app: app)
        let control = try HostPort(parsing: mesh.control)
        let rogue = try await Enrolment.certify(
            control: control, token: try JoinToken(parsing: try mesh.token("orders")),
            service: try ServiceName("orders"), trustDomain: .default)
        let session = ControlPlaneSession(control: control) { rogue }
        let running = Task { await session.run() }
        defer {
            session.close()
            running.cancel()
        }
        let client = try session.client()

        /// Opens a policy stream, writes `messages`, and returns how the control plane ended it.
        func stream(_ messages: [[UInt8]]) async -> RPCError? {
            let request = StreamingClientRequest<[UInt8]> { writer in
                for message in messages { try await writer.write(message) }
                try await Task.sleep(for: .seconds(10))  // left open: the control plane must be the one to end it
            }
            do {
                try await client.bidirectionalStreaming(
                    request: request, descriptor: Meshwork_V1_PolicyPush.Method.Stream.descriptor,
                    serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                ) { response in
                    for try await _ in response.messages {}
                }
                return nil
            } catch let error as RPCError {
                return error
            } catch {
                return RPCError(code: .unknown, message: "\(error)")
            }
        }
        func ack(hello: Bool = false, version: UInt64) throws -> [UInt8] {
            var m = Meshwork_V1_PolicyAck()
            m.hello = hello
            m.version = version
            m.advertise = "127.0.0.1:9"
            return try m.serializedBytes()
        }

        let garbage = await stream([[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00]])
        #expect(garbage?.code == .internalError || garbage?.code == .invalidArgument, "\(String(describing: garbage))")
        let noHello = await stream([try ack(version: 0)])
        #expect(noHello?.code == .invalidArgument, "\(String(describing: noHello))")
        #expect(noHello?.message.contains("starts with a hello") == true, "\(String(describing: noHello))")
        let unsent = await stream([try ack(hello: true, version: 0), try ack(version: 99)])
        #expect(unsent?.code == .invalidArgument, "\(String(describing: unsent))")
        #expect(unsent?.message.contains("version 99, which was never sent") == true, "\(String(describing: unsent))")
        let garbageAfterHello = await stream([try ack(hello: true, version: 0), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]])
        #expect(garbageAfterHello != nil, "the stream is ended")

        // Nobody else noticed: the real sidecar converges on the next change, and none of the refused streams
        // is counted among the sidecars.
        let applied = try mesh.p.run(
            "meshctl", ["apply", "-f", "\(MeshProcesses.packageRoot)/policies", "--wait", "--timeout", "20s"],
            env: mesh.meshctlEnv, timeout: 60)
        #expect(applied.status == 0, "\(applied.output)")
        #expect(applied.output.contains("version 1: applied by 1 of 1 connected sidecars"), "\(applied.output)")
        #expect(mesh.controlProcess.isRunning)
    }
}

/// Bytes on the wire as they are: lets a test send what no generated client would.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
        bytes.withUnsafeBytes { Array($0) }
    }
}
