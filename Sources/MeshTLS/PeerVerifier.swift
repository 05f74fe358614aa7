import MeshCore
import MeshIdentity
import NIOCore
import NIOSSL
import X509

/// What a TLS endpoint accepts from its peer. The callback built from it *replaces* BoringSSL's chain
/// verification: every decision about a peer certificate is made here, on our trust bundle.
public enum PeerExpectation: Sendable {
    /// Exactly this SPIFFE ID, chained to the bundle (outbound: the destination service).
    case exactly(SPIFFEID)
    /// Any SPIFFE ID of the trust domain, chained to the bundle (inbound; authorization comes later).
    case anyInTrustDomain
    /// As `anyInTrustDomain`, or else a lone self-signed enrolment certificate, which is accepted *without*
    /// an identity (control plane: only Certify with a join token is open to it).
    case workloadOrEnrolment
}

/// Builds NIOSSL custom verification callbacks from a trust-bundle source read at handshake time, so a
/// bundle update applies to the next handshake without new contexts.
public struct PeerVerifier: Sendable {
    public typealias Callback =
        @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void

    let trustDomain: TrustDomain
    let bundle: @Sendable () -> TrustBundle
    let onFailure: @Sendable (PeerVerificationFailure) -> Void

    public init(
        trustDomain: TrustDomain,
        bundle: @escaping @Sendable () -> TrustBundle,
        onFailure: @escaping @Sendable (PeerVerificationFailure) -> Void = { _ in }
    ) {
        self.trustDomain = trustDomain
        self.bundle = bundle
        self.onFailure = onFailure
    }

    /// The callback for one expectation. A verified chain is returned as metadata (leaf first), so
    /// `nioSSL_peerValidatedCertificateChain()` yields it after the handshake.
    public func callback(_ expectation: PeerExpectation) -> Callback {
        let trustDomain = self.trustDomain
        let bundle = self.bundle
        let onFailure = self.onFailure
        return { presented, promise in
            promise.completeWithTask {
                let certificates: [Certificate]
                do { certificates = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) } } catch {
                    onFailure(
                        PeerVerificationFailure(reason: .noCertificate, detail: "peer certificate does not parse"))
                    return .failed
                }
                let expected: SPIFFEID? = if case .exactly(let id) = expectation { id } else { nil }
                switch await bundle().verify(presented: certificates, trustDomain: trustDomain, expected: expected) {
                case .success(let peer):
                    let chain = try peer.chain.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) }
                    return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(chain)))
                case .failure(let failure):
                    if case .workloadOrEnrolment = expectation, failure.reason == .untrusted, certificates.count == 1,
                        EnrolmentCertificate.isEnrolment(certificates[0])
                    {
                        return .certificateVerified(VerificationMetadata(nil))
                    }
                    onFailure(failure)
                    return .failed
                }
            }
        }
    }
}

/// A client-side callback that trusts a server only if its chain ends in a CA whose key matches `pin` and
/// its leaf is `expected` — first contact, when the caller holds a join token and nothing else.
public func pinnedServerVerification(pin: CAPin, trustDomain: TrustDomain, expected: SPIFFEID) -> PeerVerifier.Callback
{
    { presented, promise in
        promise.completeWithTask {
            let certificates = try presented.map { try Certificate(derEncoded: $0.toDERBytes()) }
            guard let root = certificates.last, certificates.count >= 2, pin.matches(root) else { return .failed }
            let bundle = try TrustBundle(roots: [root])
            guard
                case .success = await bundle.verify(
                    presented: Array(certificates.dropLast()), trustDomain: trustDomain, expected: expected)
            else { return .failed }
            return .certificateVerified(VerificationMetadata(nil))
        }
    }
}
