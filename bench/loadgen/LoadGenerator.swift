import Foundation
import MeshControlClient
import MeshCore
import MeshIdentity

/// `mesh-loadgen`: simulates N sidecars against one `mesh-control` with real certificates and real gRPC
/// streams, and prints what `make bench` reports, as JSON lines:
///   issuance — N enrolments (fresh P-256 key, CSR, mTLS Certify), 64 at a time: certificates per second;
///   connect  — N policy streams opened at once (a reconnect storm): time until every one has its first push;
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
        let service = try ServiceName("load")

        // 1. Enrolment: certificate issuance rate.
        let start = ContinuousClock.now
        let identities = try await withThrowingTaskGroup(of: (Int, WorkloadIdentity).self) { group in
            var result: [WorkloadIdentity?] = Array(repeating: nil, count: n)
            var next = 0
            func add(_ group: inout ThrowingTaskGroup<(Int, WorkloadIdentity), any Error>) {
                let i = next
                next += 1
                group.addTask {
                    let id = try await Enrolment.certify(
                        control: control, token: tokens[i / 1000 % tokens.count], service: service,
                        trustDomain: .default, timeout: .seconds(60))
                    return (i, id)
                }
            }
            while next < min(64, n) { add(&group) }
            while let (i, id) = try await group.next() {
                result[i] = id
                if next < n { add(&group) }
            }
            return result.map { $0! }
        }
        let issueSeconds = seconds(ContinuousClock.now - start)
        emit(
            ["kind": "issuance", "sidecars": n, "seconds": issueSeconds, "per_second": Double(n) / issueSeconds])

        // 2. All streams at once.
        let received = Received(count: n)
        let streams = Task {
            await withTaskGroup(of: Void.self) { group in
                for (i, identity) in identities.enumerated() {
                    group.addTask {
                        let advertise = HostPort(host: "10.\(i / 65536).\(i / 256 % 256).\(i % 256)", port: 15006)
                        while !Task.isCancelled {
                            try? await PolicyStreamClient.run(
                                control: control, identity: identity, running: 0, advertise: advertise,
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

        // 3. Policy changes.
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
        streams.cancel()
        exit(0)
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
