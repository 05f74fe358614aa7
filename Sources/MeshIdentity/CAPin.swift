import Crypto
import MeshCore
import SwiftASN1
import X509

/// SHA-256 of a CA certificate's SubjectPublicKeyInfo, written `sha256:<64 hex>` (kubeadm's discovery hash).
/// A client that holds only a join token uses it to recognise the control plane on first contact.
public struct CAPin: Hashable, Sendable, CustomStringConvertible {
    public let digest: [UInt8]

    public init(of certificate: Certificate) {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate.publicKey)
        digest = Array(SHA256.hash(data: serializer.serializedBytes))
    }

    public init(parsing text: String) throws(MeshError) {
        let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        guard hex.count == 64, let bytes = [UInt8](hex: hex) else {
            throw MeshError(.invalidToken, "CA pin must be sha256:<64 hex digits>")
        }
        digest = bytes
    }

    /// True if this pin names the key of `certificate`.
    public func matches(_ certificate: Certificate) -> Bool { CAPin(of: certificate) == self }

    public var hex: String { digest.hexString }
    public var description: String { "sha256:\(hex)" }
}

extension Array where Element == UInt8 {
    init?(hex: String) {
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let hi = iterator.next() {
            guard let lo = iterator.next(), let h = Self.nibble(hi), let l = Self.nibble(lo) else { return nil }
            bytes.append(h << 4 | l)
        }
        self = bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
