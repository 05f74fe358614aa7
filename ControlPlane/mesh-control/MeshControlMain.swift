import Foundation
import Logging
import MeshControlPlane
import MeshCore
import MeshTelemetry
import ServiceLifecycle

@main
struct MeshControlMain {
    static let usage = """
        usage: mesh-control serve --data-dir DIR [flags]
          --data-dir DIR                      CA key, tokens, admin credential, policy store
          --listen HOST:PORT                  the API, mTLS 1.3 (127.0.0.1:7443)
          --admin HOST:PORT                   /metrics /ready /live, plain HTTP: keep it on loopback (127.0.0.1:7000)
          --trust-domain NAME                 (mesh.local)
          --cert-ttl DUR                      workload certificate lifetime (24h)
          --lease-ttl DUR                     registration lease (15s)
          --admission-rate N                  new sidecar streams per second after a burst (500)
          --max-connections N                 (10000)
          --handshake-timeout DUR             accept to completed TLS handshake (10s)
          --idle-timeout DUR                  no byte either way (10m)
          --max-instances-per-service N       (1000)
          --max-instances-per-connection N    (1)
          --log-level LEVEL                   (info)
          --log-target auto|stdout|journald   journald when systemd gives us JOURNAL_STREAM (auto)
        Every flag has a MESH_* environment twin (--data-dir: MESH_DATA_DIR).
        """

    static func main() async {
        var args = Array(CommandLine.arguments.dropFirst())
        if CommandLineFlags.answeredHelpOrVersion(args, binary: "mesh-control", usage: usage) { return }
        guard args.first == "serve" else { fail(64, usage) }
        args.removeFirst()
        let configuration: ControlPlaneConfiguration
        do {
            configuration = try ControlPlaneConfiguration(
                arguments: args, environment: ProcessInfo.processInfo.environment)
        } catch {
            fail(64, error.message)
        }
        MeshLogging.configure(
            target: LogTarget.resolve(configuration.logTarget, environment: ProcessInfo.processInfo.environment)
                ?? .stdout,
            service: nil, identifier: "mesh-control")
        MeshLogging.bootstrap(level: MeshLogging.level(parsing: configuration.logLevel) ?? .info)
        let logger = Logger(label: "mesh-control")
        let files = FileDescriptorLimit.raiseToHardLimit() ?? 0
        if files < configuration.listenerLimits.maxConnections + 256 {
            logger.warning(
                "the open-file limit is below --max-connections: raise LimitNOFILE or lower --max-connections",
                metadata: [
                    "open_files": "\(files)", "max_connections": "\(configuration.listenerLimits.maxConnections)",
                ])
        }
        let server = ControlPlaneServer(configuration: configuration, logger: logger)
        do {
            let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        } catch let error as MeshError {
            fail(1, error.message)
        } catch {
            fail(1, "\(error)")
        }
    }

    static func fail(_ code: Int32, _ message: String) -> Never {
        FileHandle.standardError.write(Data("mesh-control: \(message)\n".utf8))
        exit(code)
    }
}
