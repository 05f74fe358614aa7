import GRPCCore
import GRPCNIOTransportHTTP2
import MeshCore
import MeshIdentity
import X509

/// Who is calling, as established by the TLS handshake (`PeerVerifier` with `.workloadOrEnrolment`).
enum CallerIdentity {
    /// A chain verified to our bundle; the SPIFFE ID of its leaf.
    case workload(SPIFFEID, leaf: Certificate)
    /// A self-signed enrolment certificate: no identity yet, only its key.
    case enrolment(Certificate.PublicKey)
    case none

    init(_ context: ServerContext) {
        guard let tls = context.transportSpecific as? HTTP2ServerTransport.Posix.Context else {
            self = .none
            return
        }
        if let chain = tls.peerCertificateChain, let leaf = chain.first, let id = try? leaf.spiffeID() {
            self = .workload(id, leaf: leaf)
        } else if let cert = tls.peerCertificate {
            self = .enrolment(cert.publicKey)
        } else {
            self = .none
        }
    }

    /// The caller's workload service, or PERMISSION_DENIED/UNAUTHENTICATED naming what was expected.
    func requireWorkload(_ trustDomain: TrustDomain) throws -> (SPIFFEID, ServiceName) {
        guard case .workload(let id, _) = self else {
            throw RPCError(
                code: .unauthenticated, message: "this call needs a workload certificate issued by this control plane")
        }
        guard let service = id.service, id.trustDomain == trustDomain else {
            throw RPCError(code: .permissionDenied, message: "\(id) is not a workload identity of \(trustDomain)")
        }
        return (id, service)
    }

    func requireAdmin(_ trustDomain: TrustDomain) throws {
        guard case .workload(let id, _) = self, id == .admin(in: trustDomain) else {
            throw RPCError(
                code: .permissionDenied, message: "this call needs the admin credential (DATA/admin/meshctl.yaml)")
        }
    }
}
