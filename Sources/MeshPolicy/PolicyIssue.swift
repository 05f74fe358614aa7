/// One problem in a policy file, where it is and which key: `file:line:column: key.path: message`.
public struct PolicyIssue: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let column: Int
    public let keyPath: String
    public let message: String

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
}
