import MeshCore

/// Why enrolment was refused. Each reason maps to one gRPC status in `IdentityAPI`, and travels as the
/// `mesh-reason` trailer so callers can classify it without reading the message.
public struct EnrolmentRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        case malformedCSR = "csr_invalid"
        case keyMismatch = "csr_key_mismatch"
        case malformedToken = "token_malformed"
        case unknownToken = "token_unknown"
        case forgedToken = "token_forged"
        case expiredToken = "token_expired"
        case revokedToken = "token_revoked"
        case exhaustedToken = "token_used_up"
        case wrongService = "token_service_mismatch"
        case wrongTrustDomain = "trust_domain_mismatch"
        case notAuthenticated = "not_authenticated"
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.reason == rhs.reason }
}
