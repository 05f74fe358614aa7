import MeshCore
import MeshIdentity
import MeshTLS
import MeshTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing
import X509

/// Real TLS 1.3 handshakes on loopback between NIOSSL server and client handlers using our callbacks.
@Suite struct PeerVerifierHandshakeTests {
    enum Outcome: Equatable { case ok(String?), failed }

    /// Reports the handshake outcome and the verified peer identity (from the validated chain).
    final class Observer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let promise: EventLoopPromise<Outcome>
        private var done = false
        init(_ p: EventLoopPromise<Outcome>) { promise = p }
        func finish(_ outcome: Outcome) {
            guard !done else { return }
            done = true
            promise.succeed(outcome)
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent {
                let chain = try? context.pipeline.syncOperations.nioSSL_peerValidatedCertificateChain()
                let id = chain.flatMap { try? $0.leaf.toDERBytes() }.flatMap {
                    try? X509Certificate(derEncoded: $0).spiffeID().uri
                }
                // TLS 1.3: the client learns of a rejected certificate only on its first read; send a byte to find out.
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: "x")), promise: nil)
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(300)) { self.finish(.ok(id)) }
            }
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            finish(.failed); context.close(promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) { finish(.failed) }
    }

    func handshake(
        server: WorkloadIdentity, client: WorkloadIdentity, expect: PeerExpectation, serverBundle: TrustBundle? = nil,
        tls12Client: Bool = false
    ) async throws -> (server: Outcome, client: Outcome) {
        let group = MultiThreadedEventLoopGroup.singleton
        let serverContext = try NIOSSLContext(
            configuration: MeshTLSConfiguration.makeServerConfigurationWithMTLS(
                chain: server.chain, key: server.key, roots: (serverBundle ?? server.bundle).roots))
        var clientConfig = try MeshTLSConfiguration.makeClientConfigurationWithMTLS(
            chain: client.chain, key: client.key, roots: client.bundle.roots)
        if tls12Client { clientConfig.minimumTLSVersion = .tlsv12; clientConfig.maximumTLSVersion = .tlsv12 }
        let clientContext = try NIOSSLContext(configuration: clientConfig)
        let serverVerifier = PeerVerifier(trustDomain: .default, bundle: { serverBundle ?? server.bundle })
        let clientVerifier = PeerVerifier(trustDomain: .default, bundle: { client.bundle })
        let serverOutcome = group.next().makePromise(of: Outcome.self)
        let listener = try await ServerBootstrap(group: group).childChannelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(
                    NIOSSLServerHandler(
                        context: serverContext,
                        customVerificationCallbackWithMetadata: serverVerifier.callback(.anyInTrustDomain)))
                try ch.pipeline.syncOperations.addHandler(Observer(serverOutcome))
            }
        }.bind(host: "127.0.0.1", port: 0).get()
        let clientOutcome = group.next().makePromise(of: Outcome.self)
        let channel = try await ClientBootstrap(group: group).channelInitializer { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(
                    try NIOSSLClientHandler(
                        context: clientContext, serverHostname: nil,
                        customVerificationCallbackWithMetadata: clientVerifier.callback(expect)))
                try ch.pipeline.syncOperations.addHandler(Observer(clientOutcome))
            }
        }.connect(to: listener.localAddress!).get()
        let c = try await clientOutcome.futureResult.get()
        let s = try await serverOutcome.futureResult.get()
        try? await channel.close()
        try? await listener.close()
        return (s, c)
    }

    let orders = "spiffe://mesh.local/svc/orders"
    let frontend = "spiffe://mesh.local/svc/frontend"

    @Test func bothSidesLearnTheOthersVerifiedIdentity() async throws {
        let pki = try TestPKI()
        let r = try await handshake(
            server: try pki.identity(orders), client: try pki.identity(frontend),
            expect: .exactly(try SPIFFEID(parsing: orders)))
        #expect(r.client == .ok(orders))
        #expect(r.server == .ok(frontend))
    }

    @Test func theClientRefusesAServerWithAnotherIdentity() async throws {
        let pki = try TestPKI()
        let r = try await handshake(
            server: try pki.identity("spiffe://mesh.local/svc/payments"), client: try pki.identity(frontend),
            expect: .exactly(try SPIFFEID(parsing: orders)))
        #expect(r.client == .failed)
    }

    @Test func theServerRefusesAClientFromAnotherCA() async throws {
        let pki = try TestPKI(), other = try TestPKI(name: "other")
        var client = try other.identity(frontend)
        // The client trusts the server; only the server's check can fail.
        client = try WorkloadIdentity(key: client.key, chain: client.chain, bundle: pki.bundle)
        let r = try await handshake(server: try pki.identity(orders), client: client, expect: .anyInTrustDomain)
        #expect(r.server == .failed)
    }

    @Test func tls12IsRefused() async throws {
        let pki = try TestPKI()
        let r = try await handshake(
            server: try pki.identity(orders), client: try pki.identity(frontend), expect: .anyInTrustDomain,
            tls12Client: true)
        #expect(r.client == .failed && r.server == .failed)
    }

    @Test func aRootAddedToTheBundleIsTrustedAtTheNextHandshake() async throws {
        let oldCA = try TestPKI(name: "old"), newCA = try TestPKI(name: "new")
        let bundle = try TrustBundle(roots: [oldCA.root, newCA.root])
        var client = try newCA.identity(frontend)
        client = try WorkloadIdentity(key: client.key, chain: client.chain, bundle: bundle)
        let r = try await handshake(
            server: try oldCA.identity(orders), client: client, expect: .anyInTrustDomain, serverBundle: bundle)
        #expect(r.server == .ok(frontend))
    }
}

typealias X509Certificate = X509.Certificate
