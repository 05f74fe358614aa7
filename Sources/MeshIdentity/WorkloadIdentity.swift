import Crypto
import Foundation
import MeshCore
import X509

/// Everything a workload needs to speak mTLS: its key, its chain (leaf first), the roots it trusts.
public struct WorkloadIdentity: Sendable {
    public let key: P256.Signing.PrivateKey
    public let chain: [Certificate]
    public let bundle: TrustBundle
    public let spiffeID: SPIFFEID

    /// Checks that the chain is non-empty, the leaf names a SPIFFE ID and carries `key`'s public key.
    public init(key: P256.Signing.PrivateKey, chain: [Certificate], bundle: TrustBundle) throws(MeshError) {
        guard let leaf = chain.first else { throw MeshError(.invalidCertificate, "certificate chain is empty") }
        guard leaf.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw MeshError(.invalidCertificate, "certificate does not match the private key")
        }
        self.key = key
        self.chain = chain
        self.bundle = bundle
        self.spiffeID = try leaf.spiffeID()
    }

    public var leaf: Certificate { chain[0] }
    public var notBefore: Date { leaf.notValidBefore }
    public var notAfter: Date { leaf.notValidAfter }
    public var serialHex: String { leaf.serialNumber.bytes.map { String(format: "%02x", $0) }.joined() }

    /// When to renew: a uniformly random point between 60 % and 90 % of the lifetime, or `now` if that
    /// point (or 90 %) has already passed. `unit` is a random value in 0...1, injected for tests.
    public func renewalTime(now: Date, unit: Double) -> Date {
        RenewalSchedule.renewalTime(notBefore: notBefore, notAfter: notAfter, now: now, unit: unit)
    }
}

/// The renewal rule, as a pure function.
public enum RenewalSchedule {
    public static func renewalTime(notBefore: Date, notAfter: Date, now: Date, unit: Double) -> Date {
        let lifetime = notAfter.timeIntervalSince(notBefore)
        let fraction = 0.6 + 0.3 * min(max(unit, 0), 1)
        let at = notBefore.addingTimeInterval(lifetime * fraction)
        let latest = notBefore.addingTimeInterval(lifetime * 0.9)
        if now >= latest { return now }
        return max(at, now)
    }
}
