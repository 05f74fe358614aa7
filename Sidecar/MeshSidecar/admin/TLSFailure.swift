import MeshIdentity
import NIOCore
import NIOSSL

/// Why a TLS handshake failed, as the `reason` label of `mesh_tls_handshake_failures_total` (a fixed set).
enum TLSFailure: String, CaseIterable, Sendable {
    /// The peer's chain does not lead to the trust bundle, or has expired.
    case untrustedCertificate = "untrusted_certificate"
    /// The peer sent no certificate (a client without mTLS).
    case noCertificate = "no_certificate"
    /// A trusted certificate of another identity than the destination's.
    case identityMismatch = "identity_mismatch"
    /// No TLS version or cipher both sides accept (the mesh speaks TLS 1.3 only).
    case protocolMismatch = "protocol_mismatch"
    /// The bytes were not TLS at all (plain HTTP to an mTLS port).
    case notTLS = "not_tls"
    /// The connection closed during the handshake.
    case closed
    case other

    static func reason(_ error: any Error, verification: PeerVerificationFailure? = nil) -> TLSFailure {
        if let verification {
            switch verification.reason {
            case .noCertificate: return .noCertificate
            case .untrusted: return .untrustedCertificate
            case .identityMismatch: return .identityMismatch
            }
        }
        if let ssl = error as? NIOSSLError {
            switch ssl {
            case .uncleanShutdown: return .closed
            case .handshakeFailed(let boring): return reason(boringSSL: "\(boring)")
            default: return .other
            }
        }
        if let channel = error as? ChannelError, channel == .eof || channel == .ioOnClosedChannel { return .closed }
        if error is IOError { return .closed }
        return .other
    }

    /// From BoringSSL's error text (its reason codes are stable names).
    static func reason(boringSSL text: String) -> TLSFailure {
        let upper = text.uppercased()
        if upper.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || upper.contains("CERTIFICATE_REQUIRED") {
            return .noCertificate
        }
        if upper.contains("CERTIFICATE_VERIFY_FAILED") || upper.contains("BAD_CERTIFICATE")
            || upper.contains("UNKNOWN_CA") || upper.contains("CERTIFICATE_EXPIRED")
        {
            return .untrustedCertificate
        }
        if upper.contains("WRONG_VERSION_NUMBER") || upper.contains("HTTP_REQUEST")
            || upper.contains("RECORD_TOO_LARGE")
        {
            return .notTLS
        }
        if upper.contains("PROTOCOL_VERSION") || upper.contains("UNSUPPORTED_PROTOCOL")
            || upper.contains("NO_SHARED_CIPHER") || upper.contains("NO_SUPPORTED_VERSIONS")
            || upper.contains("HANDSHAKE_FAILURE")
        {
            return .protocolMismatch
        }
        return .other
    }
}
