import Foundation
import Testing

/// Real `mesh-control` / `mesh-sidecar` / `meshctl` processes and demo apps on 127.0.0.1 with port 0,
/// each logging to a file in a private temp dir. Everything started is stopped by PID in `stop()`.
final class MeshProcesses: @unchecked Sendable {
    let dir: String
    let bin: String
    private var started: [Process] = []

    init() throws {
        dir =
            FileManager.default.temporaryDirectory.appendingPathComponent("meshwork-it-\(UUID().uuidString.prefix(8))")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        bin = Self.binDir()
    }

    static func binDir() -> String {
        if let env = ProcessInfo.processInfo.environment["MESH_BIN_DIR"] { return env }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Starts a long-running process whose stdout+stderr go to `dir/<log>`.
    @discardableResult
    func start(_ executable: String, _ args: [String], log: String, env: [String: String] = [:]) throws -> Process {
        let p = process(executable, args, env: env)
        FileManager.default.createFile(atPath: "\(dir)/\(log)", contents: nil)
        let handle = FileHandle(forWritingAtPath: "\(dir)/\(log)")!
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        started.append(p)
        return p
    }

    /// Runs a command to completion (bounded by `timeout`), returning exit status and combined output.
    func run(
        _ executable: String, _ args: [String], env: [String: String] = [:], stdin: String? = nil,
        timeout: TimeInterval = 30
    ) throws -> (status: Int32, output: String) {
        let p = process(executable, args, env: env)
        let out = "\(dir)/run-\(UUID().uuidString.prefix(6)).out"
        FileManager.default.createFile(atPath: out, contents: nil)
        let handle = FileHandle(forWritingAtPath: out)!
        p.standardOutput = handle
        p.standardError = handle
        if let stdin {
            let inPath = out + ".in"
            FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
            p.standardInput = FileHandle(forReadingAtPath: inPath)
        } else {
            p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        }
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit() }
        try handle.close()
        return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// A process for one of our binaries (bare name) or an absolute path, with `env` added to ours.
    private func process(_ executable: String, _ args: [String], env: [String: String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "\(bin)/\(executable)")
        p.arguments = args
        // Admin ports on a free port unless a test says otherwise (mesh-control's default is 127.0.0.1:7000).
        p.environment = ProcessInfo.processInfo.environment.merging(["MESH_ADMIN": "127.0.0.1:0"].merging(env) { $1 }) {
            _, new in new
        }
        return p
    }

    /// Waits for `"key":"value"` in a JSON log file and returns the value.
    func field(_ log: String, _ key: String, timeout: TimeInterval = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        let needle = "\"\(key)\":\""
        while Date() < deadline {
            if let text = try? String(contentsOfFile: "\(dir)/\(log)", encoding: .utf8), let r = text.range(of: needle)
            {
                let rest = text[r.upperBound...]
                if let end = rest.firstIndex(of: "\"") { return String(rest[..<end]) }
            }
            usleep(50_000)
        }
        let text = (try? String(contentsOfFile: "\(dir)/\(log)", encoding: .utf8)) ?? ""
        throw TestFailure("no \(key) in \(log) within \(timeout)s:\n\(text)")
    }

    /// Writes a secret (a join token) the way an operator must: readable by its owner only.
    static func writeSecret(_ text: String, to path: String) throws {
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else { throw TestFailure("cannot write \(path)") }
    }

    func text(_ log: String) -> String { (try? String(contentsOfFile: "\(dir)/\(log)", encoding: .utf8)) ?? "" }

    /// Starts a demo app (`demo/app.py ROLE`) and returns its port.
    /// Test servers and clients (Python) the integration tests start.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        .path

    func startApp(_ role: String, log: String, env: [String: String] = [:]) throws -> Int {
        try startPython("\(Self.packageRoot)/demo/app.py", [role], log: log, env: env)
    }

    /// Starts a Python server script that takes its port (0) last and prints "... listening on HOST:PORT".
    func startPython(_ script: String, _ args: [String] = [], log: String, env: [String: String] = [:]) throws -> Int {
        try startPythonServer(script, args, log: log, env: env).port
    }

    /// `startPython`, also giving the process (to stop it by its PID).
    func startPythonServer(_ script: String, _ args: [String] = [], log: String, env: [String: String] = [:]) throws
        -> (port: Int, process: Process)
    {
        let process = try start("/usr/bin/python3", [script] + args + ["0"], log: log, env: env)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let line = text(log).split(separator: "\n").first, let port = Int(line.split(separator: ":").last ?? "")
            {
                return (port, process)
            }
            usleep(50_000)
        }
        throw TestFailure("\(script) did not start: \(text(log))")
    }

    /// A loopback port that was free a moment ago (for servers that cannot be told to pick one, like redis-server).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw TestFailure("no free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until something accepts connections on the loopback `port`.
    func waitForPort(_ port: Int, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return }
            usleep(50_000)
        }
        throw TestFailure("nothing listens on 127.0.0.1:\(port) after \(timeout) s")
    }

    /// SIGTERM (sidecars drain and deregister), then SIGKILL whatever is still running after 5 s.
    func stop() {
        for p in started where p.isRunning { p.terminate() }
        let deadline = Date().addingTimeInterval(5)
        while started.contains(where: { $0.isRunning }) && Date() < deadline { usleep(50_000) }
        for p in started where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in started { p.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
