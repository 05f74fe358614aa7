import Crypto
import Foundation
import MeshAPI
import MeshCore
import MeshIdentity
import X509

/// Obtaining and renewing a workload identity. The key is generated here, in the workload; only its
/// CSR leaves.
public enum Enrolment {
    /// First contact with a join token: fresh key, enrolment certificate, CSR, Certify.
    public static func certify(
        control: HostPort, token: JoinToken, service: ServiceName, trustDomain: TrustDomain,
        timeout: Duration = .seconds(10)
    ) async throws -> WorkloadIdentity {
        let key = P256.Signing.PrivateKey()
        let enrolment = try EnrolmentCertificate.make(key: key)
        let client = ControlPlaneClient(
            address: control, trustDomain: trustDomain, trust: .pinned(token.caPin), chain: [enrolment], key: key)
        var request = Meshwork_V1_CertifyRequest()
        request.token = token.text
        request.csrDer = Data(try WorkloadCSR.make(for: .workload(service, in: trustDomain), key: key))
        // A connection of its own: there is no workload certificate (and so no session) yet.
        let response = try await client.withClient { c in
            try await CallDeadline.run(timeout: timeout, control: control) { [request] in
                try await Meshwork_V1_Identity.Client(wrapping: c).certify(request)
            }
        }
        return try identity(from: response, key: key)
    }

    /// Renewal over the workload's connection (authenticated by its current certificate): a new key, the same
    /// SPIFFE ID.
    public static func renew(session: ControlPlaneSession, current: WorkloadIdentity, timeout: Duration = .seconds(10))
        async throws -> WorkloadIdentity
    {
        let key = P256.Signing.PrivateKey()
        var request = Meshwork_V1_RenewRequest()
        request.csrDer = Data(try WorkloadCSR.make(for: current.spiffeID, key: key))
        let response = try await session.call(timeout: timeout) { [request] c in
            try await Meshwork_V1_Identity.Client(wrapping: c).renew(request)
        }
        return try identity(from: response, key: key)
    }

    static func identity(from response: Meshwork_V1_CertifyResponse, key: P256.Signing.PrivateKey) throws
        -> WorkloadIdentity
    {
        let chain = try response.certificateChainDer.map { try Certificate(derEncoded: Array($0)) }
        let roots = try response.trustBundleDer.map { try Certificate(derEncoded: Array($0)) }
        return try WorkloadIdentity(key: key, chain: chain, bundle: try TrustBundle(roots: roots))
    }
}
