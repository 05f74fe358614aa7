import MeshCore
import SwiftASN1
import X509

/// A chain is acceptable only if its leaf names exactly one SPIFFE ID, in our trust domain. (Whether it is
/// the *expected* ID is checked by `TrustBundle.verify` after trust, so a mismatch is reported as one.) Lists the SAN extension as handled, because workload leaves mark it
/// critical (their subject is empty) and swift-certificates rejects unhandled critical extensions.
public struct SPIFFEPolicy: VerifierPolicy, Sendable {
    public let trustDomain: TrustDomain

    public init(trustDomain: TrustDomain) {
        self.trustDomain = trustDomain
    }

    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.subjectAlternativeName]

    public func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let id: SPIFFEID
        do { id = try chain.leaf.spiffeID() } catch {
            return .failsToMeetPolicy(reason: "peer certificate has no usable SPIFFE ID: \(error.message)")
        }
        guard id.trustDomain == trustDomain else {
            return .failsToMeetPolicy(reason: "peer \(id) is outside trust domain \(trustDomain)")
        }
        return .meetsPolicy
    }
}
