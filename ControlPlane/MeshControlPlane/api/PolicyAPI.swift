import Foundation
import GRPCCore
import Logging
import MeshAPI
import MeshCore
import MeshPolicy

/// `meshctl apply/get/delete/history/rollback`: the policy store's API, open only to the admin credential.
/// Validation runs here, on the files as the user wrote them, so every error points into them.
struct PolicyAPI: Meshwork_V1_Policy.SimpleServiceProtocol {
    let registry: PolicyRegistry
    let tracker: ConvergenceTracker
    let trustDomain: TrustDomain
    let logger: Logger

    static let author = "admin"

    func apply(request: Meshwork_V1_ApplyRequest, context: ServerContext) async throws
        -> Meshwork_V1_ChangeResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        guard !request.files.isEmpty else { throw RPCError(code: .invalidArgument, message: "no files to apply") }
        var documents: [LoadedDocument] = []
        var issues: [PolicyIssue] = []
        for file in request.files {
            switch PolicyLoader.load(yaml: file.yaml, file: file.name) {
            case .success(let loaded): documents += loaded
            case .failure(let errors): issues += errors.issues
            }
        }
        guard issues.isEmpty else {
            throw RPCError(
                code: .invalidArgument,
                message: PolicyErrors(issues: issues).summary(maxBytes: APILimits.maxErrorMessageBytes))
        }
        guard !documents.isEmpty else { throw RPCError(code: .invalidArgument, message: "the files hold no documents") }
        return try await Self.response {
            try await registry.apply(documents, author: Self.author, dryRun: request.dryRun)
        }
    }

    func delete(request: Meshwork_V1_DeleteRequest, context: ServerContext) async throws
        -> Meshwork_V1_ChangeResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        var keys: [PolicyKey] = []
        for ref in request.documents {
            guard let kind = PolicyKind(loosely: ref.kind), !ref.name.isEmpty else {
                throw RPCError(
                    code: .invalidArgument,
                    message:
                        "delete needs a kind (\(PolicyKind.allCases.map(\.rawValue).joined(separator: ", "))) and a name"
                )
            }
            keys.append(PolicyKey(kind: kind, name: ref.name))
        }
        guard !keys.isEmpty else { throw RPCError(code: .invalidArgument, message: "nothing to delete") }
        return try await Self.response { try await registry.delete(keys, author: Self.author) }
    }

    func rollback(request: Meshwork_V1_RollbackRequest, context: ServerContext) async throws
        -> Meshwork_V1_ChangeResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        return try await Self.response { try await registry.rollback(to: request.version, author: Self.author) }
    }

    func get(request: Meshwork_V1_GetRequest, context: ServerContext) async throws -> Meshwork_V1_GetResponse {
        try CallerIdentity(context).requireAdmin(trustDomain)
        var kind: PolicyKind?
        if !request.kind.isEmpty {
            guard let k = PolicyKind(loosely: request.kind) else {
                throw RPCError(
                    code: .invalidArgument,
                    message:
                        "unknown kind \(echoed(request.kind)) (known: \(PolicyKind.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            kind = k
        }
        let (version, set) = try await Self.mapped {
            try await registry.documents(at: request.version == 0 ? nil : request.version)
        }
        let selected = set.sorted.filter { doc in
            (kind == nil || doc.key.kind == kind) && (request.name.isEmpty || doc.key.name == request.name)
        }
        if let kind, !request.name.isEmpty, selected.isEmpty {
            throw RPCError(
                code: .notFound,
                message: "\(kind.rawValue)/\(echoed(request.name)) does not exist at version \(version)")
        }
        var response = Meshwork_V1_GetResponse()
        response.version = version
        response.documentsJson = selected.map { $0.canonicalJSON() }
        return response
    }

    func history(request: Meshwork_V1_HistoryRequest, context: ServerContext) async throws
        -> Meshwork_V1_HistoryResponse
    {
        try CallerIdentity(context).requireAdmin(trustDomain)
        let limit = request.limit == 0 ? 50 : Int(request.limit)
        guard (1...1000).contains(limit) else {
            throw RPCError(code: .invalidArgument, message: "limit must be 1...1000 (got \(limit))")
        }
        var response = Meshwork_V1_HistoryResponse()
        response.versions = try await Self.mapped { try await registry.history(limit: limit) }.map { record in
            var info = Meshwork_V1_VersionInfo()
            info.version = record.version
            info.createdUnix = record.createdUnix
            info.author = record.author
            info.operation = record.operation
            info.summary = record.summary
            return info
        }
        return response
    }

    func status(request: Meshwork_V1_StatusRequest, context: ServerContext) async throws -> Meshwork_V1_StatusResponse {
        try CallerIdentity(context).requireAdmin(trustDomain)
        guard request.waitSeconds <= 300 else {
            throw RPCError(code: .invalidArgument, message: "wait must be at most 300 s (got \(request.waitSeconds))")
        }
        let version = request.version == 0 ? await registry.version : request.version
        let status = await tracker.waitUntilSettled(
            version, deadline: .now + .seconds(Int64(request.waitSeconds)))
        func state(_ s: ConvergenceTracker.Sidecar) -> Meshwork_V1_SidecarState {
            var out = Meshwork_V1_SidecarState()
            out.instance = s.instance
            out.service = s.service
            out.appliedVersion = s.applied
            out.rejectedVersion = s.rejected
            out.error = s.error
            return out
        }
        var response = Meshwork_V1_StatusResponse()
        response.version = version
        response.connected = UInt32(status.connected)
        response.applied = UInt32(status.applied)
        response.lagging = status.lagging.map(state)
        response.rejected = status.rejected.map(state)
        response.converged = status.converged
        return response
    }

    private static func response(_ body: () async throws -> PolicyRegistry.Outcome) async throws
        -> Meshwork_V1_ChangeResponse
    {
        let outcome = try await mapped(body)
        var response = Meshwork_V1_ChangeResponse()
        response.version = outcome.version
        response.created = outcome.created
        response.changes = outcome.changes.map { key, change in
            var c = Meshwork_V1_DocumentChange()
            c.kind = key.kind.rawValue
            c.name = key.name
            c.action = change.rawValue
            return c
        }
        return response
    }

    /// Policy errors → INVALID_ARGUMENT with every issue; missing versions → NOT_FOUND; the rest as they are.
    private static func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let errors as PolicyErrors {
            throw RPCError(code: .invalidArgument, message: errors.summary(maxBytes: APILimits.maxErrorMessageBytes))
        } catch let error as MeshError where error.code == .notFound {
            throw RPCError(code: .notFound, message: error.message)
        } catch let error as MeshError where error.code == .unavailable {
            throw RPCError(code: .unavailable, message: error.message)
        }
    }
}
