import GRPCCore

/// Why a registration was refused: a gRPC status and a `mesh-reason` trailer callers can classify.
struct RegistrationRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    enum Reason: String, Sendable {
        /// The host is not an IP address or a DNS name of sane length, the port is not 1...65535, or the labels
        /// are too many or too long.
        case invalidEndpoint = "invalid_endpoint"
        /// The service has as many instances as `--max-instances-per-service` allows.
        case serviceInstanceLimit = "service_instance_limit"
        /// This connection registered as many distinct instances as `--max-instances-per-connection` allows.
        case connectionInstanceLimit = "connection_instance_limit"
    }

    let reason: Reason
    let message: String

    init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    var description: String { message }
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.reason == rhs.reason }

    var rpcError: RPCError {
        let code: RPCError.Code =
            switch reason {
            case .invalidEndpoint: .invalidArgument
            case .serviceInstanceLimit, .connectionInstanceLimit: .resourceExhausted
            }
        return RPCError(code: code, message: message, metadata: ["mesh-reason": .string(reason.rawValue)])
    }
}
