import Foundation
import MeshCore
import X509

/// The roots a workload trusts. May hold several, so a root can be rotated without a restart.
public struct TrustBundle: Sendable, Equatable {
    public let roots: [Certificate]

    public init(roots: [Certificate]) throws(MeshError) {
        guard !roots.isEmpty else { throw MeshError(.invalidCertificate, "trust bundle holds no root") }
        self.roots = roots
    }

    public init(pem: String, what: String = "trust bundle") throws(MeshError) {
        try self.init(roots: try [Certificate](pemBundle: pem, what: what))
    }

    public var pemText: String { roots.pemText }
}

/// Why a presented chain was refused. Classified by code, never by message text.
public struct PeerVerificationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// No certificate, or bytes that are not a certificate.
        case noCertificate
        /// The chain does not lead to a root in the bundle, has expired, or is otherwise invalid.
        case untrusted
        /// The chain is trusted but names another identity than the one expected.
        case identityMismatch(presented: SPIFFEID, expected: SPIFFEID)
    }

    public let reason: Reason
    public let detail: String

    public init(reason: Reason, detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { detail }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.reason == rhs.reason }
}

/// The verified peer: its SPIFFE ID and its chain, leaf first, ending in a root from the bundle.
public struct VerifiedPeer: Sendable, Equatable {
    public let identity: SPIFFEID
    public let chain: [Certificate]
}

extension TrustBundle {
    /// Verifies a presented chain (leaf first) against this bundle: RFC 5280 path validation at `time`
    /// (now when nil), a SPIFFE ID in `trustDomain` and, if given, exactly `expected`.
    public func verify(
        presented: [Certificate],
        trustDomain: TrustDomain,
        expected: SPIFFEID? = nil,
        at time: Date? = nil
    ) async -> Result<VerifiedPeer, PeerVerificationFailure> {
        guard let leaf = presented.first else {
            return .failure(PeerVerificationFailure(reason: .noCertificate, detail: "peer presented no certificate"))
        }
        let trusted: ValidatedCertificateChain
        switch await Self.validate(
            leaf: leaf, intermediates: Array(presented.dropFirst()), roots: roots,
            trustDomain: trustDomain, at: time)
        {
        case .validCertificate(let chain): trusted = chain
        case .couldNotValidate(let failures):
            let why = failures.map { $0.policyFailureReason.description }.joined(separator: "; ")
            return .failure(
                PeerVerificationFailure(
                    reason: .untrusted,
                    detail: "peer certificate is not trusted: \(why.isEmpty ? "no path to a trusted root" : why)"))
        }
        // Identity is checked after trust so that an untrusted chain is never reported as a mismatch.
        guard let presentedID = try? leaf.spiffeID() else {
            return .failure(PeerVerificationFailure(reason: .untrusted, detail: "peer certificate has no SPIFFE ID"))
        }
        if let expected, presentedID != expected {
            return .failure(
                PeerVerificationFailure(
                    reason: .identityMismatch(presented: presentedID, expected: expected),
                    detail: "peer presented \(presentedID) but \(expected) was expected"))
        }
        return .success(VerifiedPeer(identity: presentedID, chain: Array(trusted)))
    }

    private static func validate(
        leaf: Certificate, intermediates: [Certificate], roots: [Certificate], trustDomain: TrustDomain, at time: Date?
    ) async -> CertificateValidationResult {
        if let time {
            var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
                RFC5280Policy(validationTime: time)
                SPIFFEPolicy(trustDomain: trustDomain)
            }
            return await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy()
            SPIFFEPolicy(trustDomain: trustDomain)
        }
        return await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
    }
}
