import Foundation
import Logging
import MeshCore
import MeshSidecar
import MeshTelemetry

@main
struct MeshSidecarMain {
    static let usage = """
        usage: mesh-sidecar --service NAME --app HOST:PORT
                            (--control HOST:PORT --token-file FILE --data-dir DIR | --cert F --key F --bundle F)
          --service NAME            the service this sidecar fronts (a DNS label)
          --app HOST:PORT           the local app
          --control HOST:PORT       the control plane (with --token-file and --data-dir)
          --token-file FILE         a join token from `meshctl token create` (mode 0600)
          --data-dir DIR            key, certificate, bundle and policy (persistent)
          --cert, --key, --bundle   standalone mode: identity from files, watched; --endpoint SERVICE=HOST:PORT
          --policy FILE             standalone mode: policy documents (TrafficPolicy, ...) as meshctl validates them
          --inbound HOST:PORT       mTLS listener (0.0.0.0:15006)
          --advertise HOST:PORT     the address peers dial (default: the inbound address)
          --outbound HOST:PORT      HTTP proxy for the app (127.0.0.1:15001)
          --upstream NAME=HOST:PORT a local port for one service (repeatable)
          --label KEY=VALUE         an instance label registered for subsets, e.g. version=v2 (repeatable;
                                    MESH_LABELS=version=v2,zone=a)
          --admin HOST:PORT         /live /ready /certs /metrics /config (127.0.0.1:15000)
          --protocol http|http2|tcp what the app speaks (http)
          --health-check tcp|http:/PATH|none   checked before each lease renewal (tcp)
          --max-connections N       per listener (4096; admin 64)
          --handshake-timeout DUR   accept to TLS handshake or first byte (10s)
          --idle-timeout DUR        no byte either way (1h)
          --drain-timeout DUR       SIGTERM waits this long for in-flight requests (30s)
          --otlp-endpoint URL       OTLP/HTTP collector for spans, e.g. http://127.0.0.1:4318 (none;
                                    OTEL_EXPORTER_OTLP_ENDPOINT is honoured)
          --trace-sampling SHARE    new traces sampled here: 1% or 0.01 (1%); a caller's decision is followed
          --access-log off|on|SHARE one JSON line per request, or a share of them (off); failures always
          --log-target auto|stdout|journald   journald when systemd gives us JOURNAL_STREAM (auto)
          --trust-domain NAME       (mesh.local)   --log-level LEVEL (info)
        Every flag has a MESH_* environment twin (--token-file: MESH_TOKEN_FILE).
        """

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if CommandLineFlags.answeredHelpOrVersion(arguments, binary: "mesh-sidecar", usage: usage) { return }
        let configuration: SidecarConfiguration
        do {
            configuration = try SidecarConfiguration(
                arguments: arguments, environment: ProcessInfo.processInfo.environment)
        } catch {
            fail(64, error.message)
        }
        let environment = ProcessInfo.processInfo.environment
        MeshLogging.configure(
            target: LogTarget.resolve(configuration.telemetry.logTarget, environment: environment) ?? .stdout,
            service: configuration.service.value, identifier: "mesh-sidecar")
        MeshLogging.bootstrap(level: MeshLogging.level(parsing: configuration.logLevel) ?? .info)
        let logger = Logger(label: "mesh-sidecar")
        // Each proxied connection holds two descriptors (the caller's and the upstream's), on every data listener.
        let files = FileDescriptorLimit.raiseToHardLimit() ?? 0
        let needed = configuration.listenerLimits.maxConnections * 2 * (2 + configuration.upstreams.count)
        if files < needed {
            logger.warning(
                "the open-file limit is below two per allowed connection on every listener: raise LimitNOFILE or lower --max-connections",
                metadata: ["open_files": "\(files)", "needed": "\(needed)"])
        }
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
