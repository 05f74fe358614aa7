import Foundation

/// A misbehaving backend (`Fixtures/misbehaving_backend.py`) behind its own sidecar: an instance of a service
/// whose failures the test controls.
struct Backend {
    let name: String
    let port: Int
    let app: Process
    let sidecar: Mesh.Sidecar
    let mesh: Mesh

    /// Sets the backend's mode or script (`{"mode": "hang"}`, `{"statuses": [503, 200]}`), after zeroing its counts.
    func set(_ json: String, resetCounts: Bool = true) throws {
        if resetCounts { _ = try post("/_control/reset", "{}") }
        _ = try post("/_control/script", json)
    }

    func stats() throws -> [String: Any] {
        let r = try mesh.p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)/_control/stats"])
        guard let object = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any] else {
            throw TestFailure("no stats from \(name): \(r.output)")
        }
        return object
    }

    /// Requests the backend read in full.
    func requests() throws -> Int { try stats()["requests"] as? Int ?? -1 }

    private func post(_ path: String, _ body: String) throws -> String {
        let r = try mesh.p.run(
            "/usr/bin/curl",
            ["-s", "--max-time", "5", "-X", "POST", "-d", body, "http://127.0.0.1:\(port)\(path)"])
        guard r.status == 0 else { throw TestFailure("\(name) \(path): \(r.output)") }
        return r.output
    }
}

extension Mesh {
    /// A misbehaving backend named `name` registered as an instance of `service`.
    func backend(_ name: String, service: String = "orders", extra: [String] = []) throws -> Backend {
        let (port, app) = try p.startPythonServer(
            "\(MeshProcesses.fixtures)/misbehaving_backend.py", ["--name", name], log: "\(name).log")
        let sidecar = try sidecar(service, app: port, extra: extra)
        return Backend(name: name, port: port, app: app, sidecar: sidecar, mesh: self)
    }

    /// Applies a Service (HTTP) and a TrafficPolicy for `service` (the lines under `spec:` after `service:`),
    /// waiting until every connected sidecar runs them.
    func applyTrafficPolicy(_ service: String, _ spec: String, callers: [Sidecar], protocol: String = "http") throws {
        // A sidecar gets the policy of the destinations it calls: each caller calls the service once (a backend's
        // control endpoint, which counts nothing) so that it asks for it.
        if `protocol` == "http" {
            for caller in callers { _ = try curl(via: caller.outbound, "http://\(service)/_control/stats") }
        }
        let indented = spec.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n")
        // A TrafficPolicy needs its Service declared: both go in one apply.
        try apply(
            """
            apiVersion: meshwork.dev/v1
            kind: Service
            metadata: {name: \(service)}
            spec: {protocol: \(`protocol`)}
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: \(service)}
            spec:
              service: \(service)
            \(indented)

            """, waitFor: callers, running: "TrafficPolicy/\(service)")
    }

    /// Applies `yaml` (`meshctl apply --wait`), then waits until each of `sidecars` runs that version with the
    /// document `running` (e.g. `TrafficPolicy/orders`) in its slice. Returns the version.
    @discardableResult
    func apply(_ yaml: String, waitFor sidecars: [Sidecar], running document: String) throws -> Int {
        let file = "\(p.dir)/policy-\(UUID().uuidString.prefix(6)).yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try p.run("meshctl", ["apply", "-f", file, "--wait", "--timeout", "30s"], env: meshctlEnv, timeout: 60)
        guard r.status == 0 else { throw TestFailure("apply failed: \(r.output)") }
        guard let version = r.output.firstMatch(of: /version (\d+)/).flatMap({ Int($0.1) }) else {
            throw TestFailure("no version in: \(r.output)")
        }
        for sidecar in sidecars {
            let deadline = Date().addingTimeInterval(20)
            while true {
                let policy = try config(sidecar)["policy"] as? [String: Any]
                if (policy?["version"] as? Int ?? 0) >= version,
                    (policy?["documents"] as? [String] ?? []).contains(document)
                {
                    break
                }
                guard Date() < deadline else { throw TestFailure("\(sidecar.log) never ran version \(version)") }
                usleep(100_000)
            }
        }
        return version
    }

    /// `Fixtures/paced_client.py` through `proxy` (a sidecar's outbound listener): its JSON report.
    func paced(
        _ url: String, via proxy: String, count: Int, rate: Int, concurrency: Int = 4, method: String = "GET",
        extra: [String] = []
    ) throws -> PacedReport {
        let r = try p.run(
            "/usr/bin/python3",
            [
                "\(MeshProcesses.fixtures)/paced_client.py", "--url", url, "--proxy", proxy, "--count", "\(count)",
                "--rate", "\(rate)", "--concurrency", "\(concurrency)", "--method", method, "--timeout", "10",
            ] + extra, timeout: Double(count) / Double(max(rate, 1)) + 30)
        guard let line = r.output.split(separator: "\n").last,
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw TestFailure("paced client: \(r.output)") }
        return PacedReport(raw: object)
    }

    /// One metric's value from a sidecar's `/metrics` (0 when absent).
    /// The sum of the series matching `selector` (`name` or `name{label="value",…}`: every series of that name
    /// whose labels include those given, so `mesh_retries_total{direction="outbound"}` adds up every peer's).
    func metric(_ sidecar: Sidecar, _ selector: String) throws -> Double {
        let r = try p.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://\(sidecar.admin)/metrics"])
        return Self.sum(r.output, selector)
    }

    static func sum(_ exposition: String, _ selector: String) -> Double {
        func parse(_ series: Substring) -> (name: Substring, labels: Set<Substring>) {
            guard let open = series.firstIndex(of: "{") else { return (series, []) }
            let inner = series[series.index(after: open)..<(series.lastIndex(of: "}") ?? series.endIndex)]
            return (series[..<open], Set(inner.split(separator: ",")))
        }
        let wanted = parse(selector[...])
        var total = 0.0
        for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = parse(line[..<space])
            if series.name == wanted.name, wanted.labels.isSubset(of: series.labels) {
                total += Double(line[line.index(after: space)...]) ?? 0
            }
        }
        return total
    }
}

/// What `paced_client.py` reports.
struct PacedReport: CustomStringConvertible {
    let raw: [String: Any]
    var sent: Int { raw["sent"] as? Int ?? 0 }
    var elapsed: Double { raw["elapsed_s"] as? Double ?? 0 }
    func statuses() -> [String: Int] { raw["statuses"] as? [String: Int] ?? [:] }
    func errors() -> [String: Int] { raw["errors"] as? [String: Int] ?? [:] }
    func backends() -> [String: Int] { raw["backends"] as? [String: Int] ?? [:] }
    var maxLatencyMs: Double { (raw["latency_ms"] as? [String: Any])?["max"] as? Double ?? .infinity }
    var transportErrors: Int { (raw["transport_errors"] as? [String: Int] ?? [:]).values.reduce(0, +) }
    var description: String {
        (try? String(decoding: JSONSerialization.data(withJSONObject: raw, options: [.sortedKeys]), as: UTF8.self))
            ?? "\(raw)"
    }
}
