import Foundation
import Testing

/// Under systemd (`--log-target journald`, or `JOURNAL_STREAM` set) every line goes to the journal through
/// sd_journal_send, with structured fields. Needs a running journal: skipped, saying so, where there is none.
@Suite(.serialized) struct JournaldTests {
    static let socket = "/run/systemd/journal/socket"

    /// A backend and its sidecar (a service of a name of its own) logging with `--log-target journald` and the
    /// access log on; returns the service name.
    static func journaldSidecar(_ mesh: Mesh) throws -> String {
        let service = "journal\(Int.random(in: 1000...9999))"
        let (app, _) = try mesh.p.startPythonServer(
            "\(MeshProcesses.fixtures)/misbehaving_backend.py", ["--name", "b1"], log: "b1.log")
        let tokenFile = "\(mesh.p.dir)/\(service).token"
        try MeshProcesses.writeSecret(try mesh.token(service), to: tokenFile)
        _ = try mesh.p.start(
            "mesh-sidecar",
            [
                "--service", service, "--control", mesh.control, "--token-file", tokenFile, "--app", "127.0.0.1:\(app)",
                "--data-dir", "\(mesh.p.dir)/\(service)-data", "--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0",
                "--log-target", "journald", "--access-log", "on",
            ], log: "\(service)-sidecar.log")
        return service
    }

    /// Without a journal, the same path through libsystemd to a stand-in that reads journald's native protocol
    /// on its socket (created for the test and removed after it).
    @Test(
        .enabled(
            if: !FileManager.default.fileExists(atPath: socket),
            "a real journal runs here: the test against it covers this"),
        .enabled(if: getuid() == 0, "skipped: the stand-in journal binds /run/systemd/journal/socket, which needs root")
    )
    func withoutAJournalTheEntriesLibsystemdSendsCarryTheFields() throws {
        let mesh = try Mesh()
        let directory = (Self.socket as NSString).deletingLastPathComponent
        let madeDirectory = !FileManager.default.fileExists(atPath: directory)
        defer {
            mesh.stop()
            try? FileManager.default.removeItem(atPath: Self.socket)
            if madeDirectory { try? FileManager.default.removeItem(atPath: directory) }
        }
        let out = "\(mesh.p.dir)/journal.jsonl"
        let (_, journal) = try mesh.p.startPythonServer(
            "\(MeshProcesses.fixtures)/fake_journal.py", [Self.socket, out], log: "fake-journal.log")
        defer { kill(journal.processIdentifier, SIGKILL) }
        // The sidecar logs only to the journal, so it is started here and its addresses read from there.
        let service = try Self.journaldSidecar(mesh)
        func entries(until found: ([String: Any]) -> Bool) -> [[String: Any]] {
            var entries: [[String: Any]] = []
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                entries = mesh.p.text("journal.jsonl").split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                if entries.contains(where: found) { break }
                usleep(250_000)
            }
            return entries
        }
        _ = entries { $0["MESSAGE"] as? String == "registered" && $0["MESH_SERVICE"] as? String == service }
        let (_, binds) = try mesh.caller(binding: [service])
        let trace = "6bf92f3577b34da6a3ce929d0e0e4736"
        _ = try mesh.p.run(
            "/usr/bin/curl",
            [
                "-s", "--max-time", "10", "http://\(binds[service]!)/x", "-H",
                "traceparent: 00-\(trace)-00f067aa0ba902b7-00",
            ])
        let entries = entries { $0["TRACE_ID"] as? String == trace }
        let access = entries.first { $0["TRACE_ID"] as? String == trace && $0["MESH_SERVICE"] as? String == service }
        #expect(access?["MESH_ACCESS"] as? String == "1", "\(entries.suffix(5))")
        #expect(access?["PRIORITY"] as? String == "6")
        #expect(access?["MESH_PEER_SERVICE"] as? String == "caller")
        #expect((access?["MESSAGE"] as? String)?.contains("\"type\":\"access\"") == true)
        let listening = entries.first {
            $0["MESSAGE"] as? String == "sidecar listening" && $0["MESH_SERVICE"] as? String == service
        }
        #expect(listening?["PRIORITY"] as? String == "5", "the sidecar's own lines, as notices: \(entries.prefix(5))")
        #expect(listening?["SYSLOG_IDENTIFIER"] as? String == "mesh-sidecar")
        #expect(listening?["MESH_INBOUND"] != nil, "metadata becomes MESH_ fields")
        // Nothing on stdout once the journal takes the lines.
        #expect(!mesh.p.text("\(service)-sidecar.log").contains("sidecar listening"))
    }

    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: socket),
            "skipped: no systemd journal on this machine (\(socket) is missing)"))
    func aSidecarsLinesReachTheJournalWithStructuredFields() throws {
        let mesh = try Mesh()
        defer { mesh.stop() }
        let service = try Self.journaldSidecar(mesh)
        func entries(until found: ([String: Any]) -> Bool) throws -> [[String: Any]] {
            var entries: [[String: Any]] = []
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                let r = try mesh.p.run("/usr/bin/journalctl", ["MESH_SERVICE=\(service)", "-o", "json", "--no-pager"])
                entries = r.output.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                if entries.contains(where: found) { break }
                usleep(250_000)
            }
            return entries
        }
        _ = try entries { $0["MESSAGE"] as? String == "registered" }
        let (_, binds) = try mesh.caller(binding: [service])
        let trace = "5bf92f3577b34da6a3ce929d0e0e4736"
        _ = try mesh.p.run(
            "/usr/bin/curl",
            [
                "-s", "--max-time", "10", "http://\(binds[service]!)/x", "-H",
                "traceparent: 00-\(trace)-00f067aa0ba902b7-00",
            ])
        let found = try entries { $0["TRACE_ID"] as? String == trace }
        let access = found.first { $0["TRACE_ID"] as? String == trace }
        #expect(access?["MESH_ACCESS"] as? String == "1", "\(found.suffix(5))")
        #expect(access?["PRIORITY"] as? String == "6")
        #expect(access?["MESH_PEER_SERVICE"] as? String == "caller")
        #expect(found.contains { ($0["MESSAGE"] as? String) == "sidecar listening" }, "the sidecar's own lines too")
    }
}
