/// A service name: a DNS label (lowercase letters, digits and '-', 1...63 characters, starting and ending
/// with a letter or digit), because it appears in SPIFFE IDs, authorities and metric labels.
public struct ServiceName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    /// Throws `MeshError.invalidName` naming the rule that failed.
    public init(_ value: String) throws(MeshError) {
        guard !value.isEmpty, value.utf8.count <= 63 else {
            throw MeshError(.invalidName, "service name \(echoed(value)) must be 1...63 characters")
        }
        let allowed = value.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
        guard allowed, value.first != "-", value.last != "-" else {
            throw MeshError(
                .invalidName,
                "service name \(echoed(value)) must use only a-z, 0-9 and '-', and start and end with a letter or digit"
            )
        }
        self.value = value
    }

    public var description: String { value }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
}
