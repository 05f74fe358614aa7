/// One problem in a policy file, where it is and which key: `file:line:column: key.path: message`.
public struct PolicyIssue: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    public let keyPath: String
    public let message: String

    public init(file: String, line: Int, column: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        let key = keyPath.isEmpty ? "" : "\(keyPath): "
        // Issues about the set as a whole (a delete) have no file.
        return file.isEmpty ? key + message : "\(file):\(line):\(column): \(key)\(message)"
    }
}

/// Every problem found in one validation, sorted by position — all at once, never just the first.
public struct PolicyErrors: Error, Sendable, CustomStringConvertible {
    public let issues: [PolicyIssue]

    public init(issues: [PolicyIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }

    /// The issues in order, up to `maxBytes` of text (an error status has room for about 8 KiB), then how many
    /// more there are.
    public func summary(maxBytes: Int) -> String {
        var lines: [String] = []
        var bytes = 0
        for issue in issues {
            let line = issue.description
            guard bytes + line.utf8.count + 1 <= maxBytes - 80 else { break }
            lines.append(line)
            bytes += line.utf8.count + 1
        }
        if lines.count < issues.count {
            lines.append("… and \(issues.count - lines.count) more (meshctl validate -f FILES lists them all)")
        }
        return lines.joined(separator: "\n")
    }
}
