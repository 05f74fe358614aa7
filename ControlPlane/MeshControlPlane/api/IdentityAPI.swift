import Foundation
import GRPCCore
import Logging
import MeshAPI
import MeshCore
import MeshIdentity
import SwiftASN1
import X509

/// The CA's gRPC face. `certify` reads as the checklist it is, one outcome per failure:
/// CSR parses and is self-signed → CSR key is the TLS key → token valid, unexpired, unrevoked, has uses →
/// token's service is the CSR's → issue.
struct IdentityAPI: Meshwork_V1_Identity.SimpleServiceProtocol {
    let ca: CertificateAuthority
    let tokens: TokenRegistry
    let leafLifetime: Duration
    var metrics: ControlPlaneMetrics?
    let logger: Logger

    func certify(request: Meshwork_V1_CertifyRequest, context: ServerContext) async throws
        -> Meshwork_V1_CertifyResponse
    {
        do {
            let csr: WorkloadCSR.Request
            do { csr = try WorkloadCSR.check(der: Array(request.csrDer)) } catch {
                throw EnrolmentRefusal(.malformedCSR, error.message)
            }
            guard case .enrolment(let tlsKey) = CallerIdentity(context) else {
                throw EnrolmentRefusal(
                    .keyMismatch,
                    "Certify must be called over a connection presenting the enrolment certificate of the CSR's key")
            }
            guard tlsKey == csr.publicKey else {
                throw EnrolmentRefusal(.keyMismatch, "the CSR's key differs from the key of this TLS connection")
            }
            guard csr.identity.trustDomain == ca.trustDomain, let service = csr.identity.service else {
                throw EnrolmentRefusal(
                    .wrongTrustDomain,
                    "CSR asks for \(csr.identity), which is not spiffe://\(ca.trustDomain)/svc/<service>")
            }
            let token = try await tokens.redeem(request.token, for: service, now: Date())
            let response = try issue(csr.identity, csr.publicKey)
            metrics?.issued["join_token"]!.increment()
            logger.info(
                "certificate issued",
                metadata: ["identity": "\(csr.identity)", "token": "\(token.id)", "via": "join-token"])
            return response
        } catch let refusal as EnrolmentRefusal {
            metrics?.refused[refusal.reason]!.increment()
            logger.warning(
                "enrolment refused", metadata: ["reason": "\(refusal.reason.rawValue)", "detail": "\(refusal.message)"])
            throw Self.rpcError(refusal)
        }
    }

    func renew(request: Meshwork_V1_RenewRequest, context: ServerContext) async throws -> Meshwork_V1_CertifyResponse {
        do {
            let (caller, _) = try CallerIdentity(context).requireWorkload(ca.trustDomain)
            let csr: WorkloadCSR.Request
            do { csr = try WorkloadCSR.check(der: Array(request.csrDer)) } catch {
                throw EnrolmentRefusal(.malformedCSR, error.message)
            }
            guard csr.identity == caller else {
                throw EnrolmentRefusal(
                    .wrongService, "renewal CSR asks for \(csr.identity) but the caller is \(caller)")
            }
            let response = try issue(caller, csr.publicKey)
            metrics?.issued["renewal"]!.increment()
            logger.info("certificate renewed", metadata: ["identity": "\(caller)"])
            return response
        } catch let refusal as EnrolmentRefusal {
            metrics?.refused[refusal.reason]!.increment()
            logger.warning(
                "renewal refused", metadata: ["reason": "\(refusal.reason.rawValue)", "detail": "\(refusal.message)"])
            throw Self.rpcError(refusal)
        }
    }

    private func issue(_ identity: SPIFFEID, _ key: Certificate.PublicKey) throws -> Meshwork_V1_CertifyResponse {
        let leaf = try ca.issue(identity: identity, publicKey: key, lifetime: leafLifetime)
        var response = Meshwork_V1_CertifyResponse()
        response.certificateChainDer = [Data(leaf.derBytes)]
        response.trustBundleDer = ca.bundle.roots.map { Data($0.derBytes) }
        response.spiffeID = identity.uri
        response.notBeforeUnix = Int64(leaf.notValidBefore.timeIntervalSince1970)
        response.notAfterUnix = Int64(leaf.notValidAfter.timeIntervalSince1970)
        return response
    }

    /// The one place that decides the status of each refusal.
    static func rpcError(_ refusal: EnrolmentRefusal) -> RPCError {
        let code: RPCError.Code =
            switch refusal.reason {
            case .malformedCSR, .malformedToken, .wrongTrustDomain: .invalidArgument
            case .unknownToken, .forgedToken, .expiredToken, .notAuthenticated: .unauthenticated
            case .revokedToken, .exhaustedToken, .wrongService, .keyMismatch: .permissionDenied
            }
        return RPCError(
            code: code, message: refusal.message, metadata: ["mesh-reason": .string(refusal.reason.rawValue)])
    }
}
