/// A SPIFFE trust domain such as `mesh.local`: lowercase letters, digits, '.', '-' and '_' (SPIFFE ID spec §2.1).
public struct TrustDomain: Hashable, Sendable, CustomStringConvertible {
    public let name: String

    public static let `default` = try! TrustDomain("mesh.local")

    public init(_ name: String) throws(MeshError) {
        let ok =
            !name.isEmpty && name.utf8.count <= 255
            && name.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e || $0 == 0x2d || $0 == 0x5f
            }
        guard ok else {
            throw MeshError(.invalidName, "trust domain \"\(name)\" must be 1...255 of a-z, 0-9, '.', '-', '_'")
        }
        self.name = name
    }

    public var description: String { name }
}
