import MeshCore
import NIOCore
import NIOPosix

/// How the sidecar decides whether its app can take traffic (`--health-check`): an instance whose app fails
/// it stays registered but is not served to callers until it passes again.
public enum AppHealthCheck: Sendable, Equatable, CustomStringConvertible {
    /// Always healthy (the lease alone decides).
    case none
    /// The app's port accepts a TCP connection.
    case tcp
    /// `GET path` on the app answers 2xx or 3xx.
    case http(path: String)

    /// `none`, `tcp` or `http:/PATH`.
    public init(parsing text: String) throws(MeshError) {
        switch text {
        case "none": self = .none
        case "tcp": self = .tcp
        case let t where t.hasPrefix("http:/") && !t.contains(" "): self = .http(path: String(t.dropFirst(5)))
        default: throw MeshError(.invalidConfiguration, "must be none, tcp or http:/PATH (e.g. http:/healthz)")
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .tcp: "tcp"
        case .http(let path): "http:\(path)"
        }
    }

    /// Runs the check against `app`; nil when healthy, else why not (for the log).
    func run(against app: HostPort, group: any EventLoopGroup, timeout: Duration = .seconds(2)) async -> String? {
        if case .none = self { return nil }
        do {
            return try await withThrowingTaskGroup(of: String?.self) { tasks in
                tasks.addTask { try await self.probe(app, group: group, timeout: timeout) }
                tasks.addTask {
                    try await Task.sleep(for: timeout)
                    return "no answer within \(timeout)"
                }
                let first = try await tasks.next()!
                tasks.cancelAll()
                return first
            }
        } catch {
            return "\(error)"
        }
    }

    private func probe(_ app: HostPort, group: any EventLoopGroup, timeout: Duration) async throws -> String? {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .connect(host: app.host, port: app.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        guard case .http(let path) = self else {
            try? await channel.channel.close()
            return nil
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(
                ByteBuffer(
                    string:
                        "GET \(path) HTTP/1.1\r\nHost: \(app)\r\nUser-Agent: meshwork-health-check\r\nConnection: close\r\n\r\n"
                ))
            var head = ""
            for try await chunk in inbound {
                head += String(buffer: chunk)
                if head.contains("\r\n") || head.utf8.count > 1024 { break }
            }
            let parts = head.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
                return "GET \(path) did not get an HTTP response"
            }
            return (200..<400).contains(status) ? nil : "GET \(path) answered \(status)"
        }
    }
}
