import Foundation
import MeshCore

/// What the control plane keeps of a join token: never the secret, only its SHA-256.
struct TokenRecord: Codable, Sendable, Equatable {
    var id: String
    var service: String
    var secretSHA256: String
    var createdUnix: Int64
    var expiresUnix: Int64
    var maxUses: UInt32
    var uses: UInt32
    var revokedUnix: Int64?
}
