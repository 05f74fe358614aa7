import Foundation
import MeshControlClient
import MeshCore
import MeshIdentity
import Synchronization

/// `mesh-loadgen`: simulates N sidecars against one `mesh-control` with real certificates and real gRPC
/// streams, and prints what `make bench` reports, as JSON lines:
///   issuance — N enrolments (fresh P-256 key, CSR, mTLS Certify), `--concurrency` (64) at a time: certificates
///              per second, and CPU per certificate of the control plane (`--control-pid`) and of this tool;
///   connect  — N policy streams opened at once (a reconnect storm): time until every one has its first push;
///   renewal  — every simulated sidecar renews its certificate over its open connection: renewals per second
///              and CPU per renewal (the steady-state issuance a running mesh sees);
///   push     — per policy change (applied with `meshctl apply`): each simulated sidecar's time from the apply
///              to receiving (and ACKing) the new version: p50, p99, max; and the control plane's own view
///              (`meshctl status --wait`) of when all N had ACKed.
/// Bounded: every phase has a deadline and the tool exits when done.
@main
struct LoadGenerator {
    static func main() async throws {
        let args = Arguments(CommandLine.arguments.dropFirst())
        let control = try HostPort(parsing: args["control"])
        let tokens = try String(contentsOfFile: args["token-file"], encoding: .utf8).split(separator: "\n")
            .map { try JoinToken(parsing: String($0)) }
        let n = Int(args["sidecars"])!
        let meshctl = args["meshctl"]
        let policyFile = args["policy-file"]
        let rounds = Int(args["rounds", default: "5"])!
        let concurrency = Int(args["concurrency", default: "64"])!
        let service = try ServiceName("load")
        let controlCPU = CPUMeter(pid: args["control-pid", default: ""])

        // 1. Enrolment: certificate issuance rate.
        let start = ContinuousClock.now
        controlCPU.mark()
        let identities = try await eachOf(n, concurrency: concurrency) { i in
            try await Enrolment.certify(
                control: control, token: tokens[i / 1000 % tokens.count], service: service, trustDomain: .default,
                timeout: .seconds(60))
        }
        let issueSeconds = seconds(ContinuousClock.now - start)
        emit(
            [
                "kind": "issuance", "sidecars": n, "seconds": issueSeconds, "per_second": Double(n) / issueSeconds,
                "control_cpu_ms_each": controlCPU.mark() * 1000 / Double(n),
                "loadgen_cpu_ms_each": CPUMeter.own() * 1000 / Double(n),
            ])

        // 2. All streams at once, each simulated sidecar on its own connection (as a sidecar's session).
        let sessions = identities.map { identity in ControlPlaneSession(control: control) { identity } }
        let received = Received(count: n)
        let streamsEnded = Flag()
        let streams = Task {
            defer { streamsEnded.set() }
            await withTaskGroup(of: Void.self) { group in
                for (i, session) in sessions.enumerated() {
                    group.addTask { await session.run() }
                    group.addTask {
                        let advertise = HostPort(host: "10.\(i / 65536).\(i / 256 % 256).\(i % 256)", port: 15006)
                        while !Task.isCancelled {
                            try? await PolicyStreamClient.run(
                                session: session, running: 0, advertise: advertise,
                                destinations: { ["orders"] },
                                onPolicy: { pushed in
                                    await received.record(sidecar: i, version: pushed.version)
                                    return nil
                                })
                            try? await Task.sleep(for: .milliseconds(500))
                        }
                    }
                }
            }
        }
        let connectStart = ContinuousClock.now
        guard let initial = await received.waitForAll(atLeast: 0, deadline: .now + .seconds(300)) else {
            emit([
                "kind": "error", "phase": "connect", "sidecars": n, "message": "not every stream got a push in 300 s",
            ])
            exit(1)
        }
        emit([
            "kind": "connect", "sidecars": n, "all_ms": seconds(initial - connectStart) * 1000,
        ])

        // 3. Renewal: every sidecar renews its certificate over its open connection (what a running sidecar
        // does), `--concurrency` at a time.
        let renewStart = ContinuousClock.now
        controlCPU.mark()
        let ownBefore = CPUMeter.own()
        _ = try await eachOf(n, concurrency: concurrency) { i in
            try await Enrolment.renew(session: sessions[i], current: identities[i], timeout: .seconds(60))
        }
        let renewSeconds = seconds(ContinuousClock.now - renewStart)
        emit([
            "kind": "renewal", "sidecars": n, "seconds": renewSeconds, "per_second": Double(n) / renewSeconds,
            "control_cpu_ms_each": controlCPU.mark() * 1000 / Double(n),
            "loadgen_cpu_ms_each": (CPUMeter.own() - ownBefore) * 1000 / Double(n),
        ])

        // 4. Policy changes.
        var allTimes: [Double] = []
        for round in 1...rounds {
            let text = try String(contentsOfFile: policyFile, encoding: .utf8)
                .replacingOccurrences(of: "@ROUND@", with: "r\(round)-\(UUID().uuidString.prefix(6).lowercased())")
            let file = NSTemporaryDirectory() + "loadgen-policy.yaml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let applyStart = ContinuousClock.now
            let applied = try run(meshctl, ["apply", "-o", "json", "-f", file])
            guard let range = applied.range(of: #""version":[0-9]+"#, options: .regularExpression),
                let version = UInt64(applied[range].dropFirst(10))
            else {
                emit(["kind": "error", "phase": "apply", "message": applied])
                exit(1)
            }
            let status = try run(meshctl, ["status", "--wait", "60s", "--version", "\(version)"])
            let controlView = seconds(ContinuousClock.now - applyStart) * 1000
            guard await received.waitForAll(atLeast: version, deadline: .now + .seconds(60)) != nil else {
                emit(["kind": "error", "phase": "push", "message": "not all sidecars got version \(version) in 60 s"])
                exit(1)
            }
            let latencies = await received.latencies(version: version, since: applyStart).sorted()
            allTimes.append(latencies.last!)
            emit([
                "kind": "push", "sidecars": n, "round": round, "version": Int(version),
                "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99), "max_ms": latencies.last!,
                "status_all_acked_ms": controlView,
                "status": status.split(separator: "\n").first.map(String.init) ?? "",
            ])
        }
        allTimes.sort()
        emit(["kind": "push-summary", "sidecars": n, "rounds": rounds, "p99_all_acked_ms": percentile(allTimes, 0.99)])
        // End the streams before exiting: exit() while NIO threads still run them can crash in teardown.
        streams.cancel()
        for session in sessions { session.close() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !streamsEnded.isSet, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        exit(0)
    }

    /// `body(0..<n)`, at most `concurrency` at a time; the results in order.
    static func eachOf<R: Sendable>(
        _ n: Int, concurrency: Int, _ body: @Sendable @escaping (Int) async throws -> R
    ) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results: [R?] = Array(repeating: nil, count: n)
            var next = 0
            func add(_ group: inout ThrowingTaskGroup<(Int, R), any Error>) {
                let i = next
                next += 1
                group.addTask { (i, try await body(i)) }
            }
            while next < min(concurrency, n) { add(&group) }
            while let (i, result) = try await group.next() {
                results[i] = result
                if next < n { add(&group) }
            }
            return results.map { $0! }
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    static func emit(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// When each simulated sidecar received each version.
actor Received {
    private var versions: [UInt64]
    private var at: [UInt64: [Int: ContinuousClock.Instant]] = [:]
    init(count: Int) { versions = Array(repeating: UInt64.max, count: count) }

    func record(sidecar: Int, version: UInt64) {
        if versions[sidecar] == .max || version > versions[sidecar] { versions[sidecar] = version }
        if at[version]?[sidecar] == nil { at[version, default: [:]][sidecar] = .now }
    }

    /// The moment the last sidecar reached `atLeast`, or nil at the deadline.
    func waitForAll(atLeast version: UInt64, deadline: ContinuousClock.Instant) async -> ContinuousClock.Instant? {
        while ContinuousClock.now < deadline {
            if versions.allSatisfy({ $0 != .max && $0 >= version }) {
                return at[version]?.values.max() ?? .now
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    func latencies(version: UInt64, since start: ContinuousClock.Instant) -> [Double] {
        (at[version] ?? [:]).values.map { LoadGenerator.seconds($0 - start) * 1000 }
    }
}

/// A one-way flag readable from any thread.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// CPU seconds (user + system) of a process since the last `mark()`, from `/proc/PID/stat`; 0 without a pid.
final class CPUMeter: @unchecked Sendable {
    private let pid: String
    private var last = 0.0
    init(pid: String) { self.pid = pid }

    @discardableResult func mark() -> Double {
        let now = pid.isEmpty ? 0 : Self.seconds(stat: "/proc/\(pid)/stat")
        defer { last = now }
        return now - last
    }

    /// This process's CPU seconds so far.
    static func own() -> Double { seconds(stat: "/proc/self/stat") }

    private static func seconds(stat path: String) -> Double {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// `--name value` pairs.
struct Arguments {
    private var values: [String: String] = [:]
    init(_ args: ArraySlice<String>) {
        var it = args.makeIterator()
        while let key = it.next() {
            guard key.hasPrefix("--"), let value = it.next() else { continue }
            values[String(key.dropFirst(2))] = value
        }
    }
    subscript(_ key: String, default fallback: String? = nil) -> String {
        if let v = values[key] ?? fallback { return v }
        FileHandle.standardError.write(Data("mesh-loadgen: --\(key) is required\n".utf8))
        exit(64)
    }
}
