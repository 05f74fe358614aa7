/// The error every Meshwork library throws: an opaque, extensible code, a message that says what to fix,
/// and where it was raised. Equality compares the code only, so callers match on causes, not on text.
public struct MeshError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let invalidName = Code("invalid_name")
        public static let invalidIdentity = Code("invalid_identity")
        public static let invalidAddress = Code("invalid_address")
        public static let invalidDuration = Code("invalid_duration")
        public static let invalidConfiguration = Code("invalid_configuration")
        public static let invalidCertificate = Code("invalid_certificate")
        public static let invalidToken = Code("invalid_token")
        public static let insecureFile = Code("insecure_file")
        public static let fileSystem = Code("file_system")
        public static let notFound = Code("not_found")
        public static let unavailable = Code("unavailable")
        public static let invalidPolicy = Code("invalid_policy")
    }

    public let code: Code
    public let message: String
    public let fileID: String
    public let line: Int

    public init(_ code: Code, _ message: String, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.fileID = fileID
        self.line = line
    }

    public var description: String { message }

    public static func == (lhs: MeshError, rhs: MeshError) -> Bool { lhs.code == rhs.code }
}
