import Crypto
import MeshCore

/// A join token: `mwt1.<id>.<secret>.<ca-pin-hex>`. The id names the token in the control plane's
/// registry (and in `meshctl token revoke`), the secret proves possession (the control plane keeps only
/// its SHA-256), and the pin lets the holder verify the control plane on first contact.
public struct JoinToken: Sendable, Equatable {
    public static let prefix = "mwt1"

    public let id: String
    public let secret: String
    public let caPin: CAPin

    /// Makes a fresh token with a random 8-byte id and 32-byte secret.
    public static func generate(caPin: CAPin) -> JoinToken {
        var rng = SystemRandomNumberGenerator()
        let id = (0..<8).map { _ in UInt8.random(in: 0...255, using: &rng) }.hexString
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }.hexString
        return JoinToken(id: id, secret: secret, caPin: caPin)
    }

    init(id: String, secret: String, caPin: CAPin) {
        self.id = id
        self.secret = secret
        self.caPin = caPin
    }

    /// Parses the printed form (surrounding whitespace ignored). Throws `.invalidToken` saying what is off.
    public init(parsing raw: String) throws(MeshError) {
        let text = raw.trimmingWhitespace()
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, parts[0] == Self.prefix else {
            throw MeshError(.invalidToken, "join token is malformed: expected mwt1.<id>.<secret>.<pin>")
        }
        guard parts[1].count == 16, [UInt8](hex: parts[1]) != nil,
            parts[2].count == 64, [UInt8](hex: parts[2]) != nil
        else {
            throw MeshError(.invalidToken, "join token is malformed: id or secret is not hex of the right length")
        }
        self.id = parts[1]
        self.secret = parts[2]
        self.caPin = try CAPin(parsing: parts[3])
    }

    public var text: String { "\(Self.prefix).\(id).\(secret).\(caPin.hex)" }

    /// SHA-256 of the secret, as the control plane stores it.
    public var secretDigest: [UInt8] { Self.digest(ofSecret: secret) }

    public static func digest(ofSecret secret: String) -> [UInt8] { Array(SHA256.hash(data: Array(secret.utf8))) }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Constant-time comparison, for secrets.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in a.indices { diff |= a[i] ^ b[i] }
    return diff == 0
}
