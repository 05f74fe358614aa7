import Foundation
import Logging
import MeshCore
import MeshSidecar
import MeshTelemetry

@main
struct MeshSidecarMain {
    static func main() async {
        let configuration: SidecarConfiguration
        do {
            configuration = try SidecarConfiguration(
                arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
        } catch {
            fail(64, error.message)
        }
        MeshLogging.bootstrap(level: MeshLogging.level(parsing: configuration.logLevel) ?? .info)
        let logger = Logger(label: "mesh-sidecar")
        do {
            try await Sidecar(configuration: configuration, logger: logger).run()
        } catch let error as MeshError {
            fail(1, error.message)
        } catch {
            fail(1, "\(error)")
        }
    }

    static func fail(_ code: Int32, _ message: String) -> Never {
        FileHandle.standardError.write(Data("mesh-sidecar: \(message)\n".utf8))
        exit(code)
    }
}
