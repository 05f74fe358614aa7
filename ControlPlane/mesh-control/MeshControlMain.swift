import Foundation
import Logging
import MeshControlPlane
import MeshCore
import MeshTelemetry
import ServiceLifecycle

@main
struct MeshControlMain {
    static func main() async {
        var args = Array(CommandLine.arguments.dropFirst())
        guard args.first == "serve" else {
            fail(
                64,
                "usage: mesh-control serve --data-dir DIR [--listen 127.0.0.1:7443] [--trust-domain mesh.local] [--cert-ttl 24h] [--log-level info]"
            )
        }
        args.removeFirst()
        let configuration: ControlPlaneConfiguration
        do {
            configuration = try ControlPlaneConfiguration(
                arguments: args, environment: ProcessInfo.processInfo.environment)
        } catch {
            fail(64, error.message)
        }
        MeshLogging.bootstrap(level: MeshLogging.level(parsing: configuration.logLevel) ?? .info)
        let logger = Logger(label: "mesh-control")
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
