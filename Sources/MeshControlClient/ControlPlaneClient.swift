import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshAPI
import MeshCore
import MeshIdentity
import MeshTLS
import NIOCore
import NIOSSL
import X509

/// How the caller recognises the control plane.
public enum ControlPlaneTrust: Sendable {
    /// First contact: the CA's key pin from a join token.
    case pinned(CAPin)
    /// The trust bundle received at enrolment.
    case bundle(TrustBundle)
}

/// A connection to `mesh-control`: mTLS, verifying the server is `spiffe://<td>/control` under `trust`,
/// presenting `chain`/`key` (a workload or admin certificate, or an enrolment certificate).
public struct ControlPlaneClient: Sendable {
    public let address: HostPort
    public let trustDomain: TrustDomain
    public let trust: ControlPlaneTrust
    public let chain: [Certificate]
    public let key: P256.Signing.PrivateKey

    public init(
        address: HostPort, trustDomain: TrustDomain, trust: ControlPlaneTrust, chain: [Certificate],
        key: P256.Signing.PrivateKey
    ) {
        self.address = address
        self.trustDomain = trustDomain
        self.trust = trust
        self.chain = chain
        self.key = key
    }

    /// Runs `body` with a connected gRPC client; the connection closes when it returns.
    public func withClient<R: Sendable>(
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        try await withGRPCClient(transport: try makeTransport()) { client in try await body(client) }
    }

    /// The mTLS transport: TLS from the mesh's one factory (1.3 only, this client's certificate), with a callback
    /// that checks the server against `trust`. gRPC is told the transport is secured by a handler of our own
    /// (`customSecure`), placed first on each connection it opens.
    func makeTransport() throws -> HTTP2ClientTransport.Posix {
        let expected = SPIFFEID.controlPlane(in: trustDomain)
        let callback: PeerVerifier.Callback
        let roots: [Certificate]
        switch trust {
        case .pinned(let pin):
            callback = pinnedServerVerification(pin: pin, trustDomain: trustDomain, expected: expected)
            roots = []
        case .bundle(let bundle):
            callback = PeerVerifier(trustDomain: trustDomain, bundle: { bundle }).callback(.exactly(expected))
            roots = bundle.roots
        }
        let context = try NIOSSLContext(
            configuration: MeshTLSConfiguration.makeClientConfigurationWithMTLS(
                chain: chain, key: key, roots: roots, alpn: ["h2"]))
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    NIOSSLClientHandler(
                        context: context, serverHostname: nil, customVerificationCallbackWithMetadata: callback),
                    position: .first)
            }
        }
        return try HTTP2ClientTransport.Posix(
            target: .ipv4(address: address.host, port: address.port), transportSecurity: .customSecure, config: config)
    }
}

/// A failure talking to the control plane, with the gRPC code and the server's reason (`mesh-reason`).
public struct ControlPlaneError: Error, Sendable, CustomStringConvertible {
    public let code: RPCError.Code
    public let reason: String?
    public let message: String

    public init(_ error: RPCError) {
        code = error.code
        reason = error.metadata[stringValues: "mesh-reason"].first(where: { _ in true })
        message = error.message
    }

    public var description: String { "\(message) (\(code)\(reason.map { ", \($0)" } ?? ""))" }
}
