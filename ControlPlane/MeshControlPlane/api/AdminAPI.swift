import Foundation
import GRPCCore
import Logging
import MeshAPI
import MeshCore

/// Operator calls, open only to the admin credential.
struct AdminAPI: Meshwork_V1_Admin.SimpleServiceProtocol {
    static let maxTTLSeconds: Int64 = 365 * 86400
    static let maxUses: UInt32 = 1000

    let tokens: TokenRegistry
    let trustDomain: TrustDomain
    let logger: Logger

    func createToken(request: Meshwork_V1_CreateTokenRequest, context: ServerContext) async throws
        -> Meshwork_V1_CreateTokenResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        let service: ServiceName
        do { service = try ServiceName(request.service) } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        guard (1...Self.maxTTLSeconds).contains(request.ttlSeconds) else {
            throw RPCError(code: .invalidArgument, message: "ttl must be 1s...8760h (got \(request.ttlSeconds)s)")
        }
        guard (1...Self.maxUses).contains(request.maxUses) else {
            throw RPCError(code: .invalidArgument, message: "uses must be 1...\(Self.maxUses) (got \(request.maxUses))")
        }
        let (token, record) = try await tokens.create(
            service: service, ttl: .seconds(request.ttlSeconds), maxUses: request.maxUses, now: Date())
        logger.info(
            "join token created",
            metadata: ["token": "\(token.id)", "service": "\(service)", "uses": "\(record.maxUses)"])
        var response = Meshwork_V1_CreateTokenResponse()
        response.token = token.text
        response.tokenID = token.id
        response.expiresUnix = record.expiresUnix
        return response
    }

    func revokeToken(request: Meshwork_V1_RevokeTokenRequest, context: ServerContext) async throws
        -> Meshwork_V1_RevokeTokenResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        guard try await tokens.revoke(id: request.tokenID, now: Date()) else {
            throw RPCError(
                code: .notFound, message: "no join token with id \(echoed(request.tokenID)) (see: meshctl token list)")
        }
        logger.info("join token revoked", metadata: ["token": "\(echoed(request.tokenID))"])
        return Meshwork_V1_RevokeTokenResponse()
    }

    func listTokens(request: Meshwork_V1_ListTokensRequest, context: ServerContext) async throws
        -> Meshwork_V1_ListTokensResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        var response = Meshwork_V1_ListTokensResponse()
        response.tokens = await tokens.list().map { r in
            var info = Meshwork_V1_TokenInfo()
            info.tokenID = r.id
            info.service = r.service
            info.expiresUnix = r.expiresUnix
            info.uses = r.uses
            info.maxUses = r.maxUses
            info.revoked = r.revokedUnix != nil
            return info
        }
        return response
    }
}
