#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

private let systemWrite = write
private let systemRead = read

/// File operations for secrets and state: writes are atomic (temp file, fsync, rename), so a crash never
/// leaves half a key or certificate behind, and secrets are created 0600 from the first byte.
public enum SecureFiles {
    /// Writes `bytes` to `path` atomically with the given mode.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(MeshError) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw errnoError("cannot create \(tmp)") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errnoError("cannot write \(tmp)")
                close(fd); unlink(tmp)
                throw e
            }
            offset += n
        }
        fchmod(fd, mode)
        guard fsync(fd) == 0 else {
            let e = errnoError("cannot fsync \(tmp)")
            close(fd); unlink(tmp)
            throw e
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = errnoError("cannot rename \(tmp) to \(path)")
            unlink(tmp)
            throw e
        }
        syncDirectory(of: path)
    }

    public static func write(_ text: String, to path: String, mode: mode_t = 0o600) throws(MeshError) {
        try write(Array(text.utf8), to: path, mode: mode)
    }

    /// Reads a whole file; nil if it does not exist.
    public static func read(_ path: String) throws(MeshError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw errnoError("cannot open \(path)")
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errnoError("cannot read \(path)")
            }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    public static func readString(_ path: String) throws(MeshError) -> String? {
        try read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The permission bits of a file, or nil if it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }

    /// Refuses a secret that group or others can read or write.
    public static func requirePrivate(_ path: String) throws(MeshError) {
        guard let mode = mode(of: path) else { return }
        guard mode & 0o077 == 0 else {
            throw MeshError(
                .insecureFile,
                "\(path) has mode \(String(mode, radix: 8)) but must be readable only by its owner: run chmod 600 \(path)"
            )
        }
    }

    /// Creates a directory (and parents) with the given mode if missing.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws(MeshError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw errnoError("cannot create directory \(current)")
            }
        }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    private static func syncDirectory(of path: String) {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    private static func errnoError(_ what: String) -> MeshError {
        MeshError(.fileSystem, "\(what): \(String(cString: strerror(errno)))")
    }
}

extension SecureFiles {
    /// True if `path` (or its nearest existing directory) is on tmpfs or ramfs, which a reboot empties: no
    /// place for a join token or a key that must survive. Decided from the longest mount point in
    /// /proc/self/mounts containing the resolved path; false where that cannot be read.
    public static func isOnVolatileFilesystem(_ path: String) -> Bool {
        var candidate = path
        while !exists(candidate), let slash = candidate.lastIndex(of: "/") {
            candidate = slash == candidate.startIndex ? "/" : String(candidate[..<slash])
        }
        guard let resolvedPointer = realpath(candidate.isEmpty ? "." : candidate, nil) else { return false }
        let resolved = String(cString: resolvedPointer)
        free(resolvedPointer)
        guard let mounts = try? readString("/proc/self/mounts") else { return false }
        var best: (mountPoint: String, type: String) = ("", "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { continue }
            let mountPoint = String(fields[1])
            let contains = mountPoint == "/" || resolved == mountPoint || resolved.hasPrefix(mountPoint + "/")
            if contains && mountPoint.count >= best.mountPoint.count { best = (mountPoint, String(fields[2])) }
        }
        return best.type == "tmpfs" || best.type == "ramfs"
    }
}
