import MeshCore
import MeshIdentity
import NIOCore
import NIOHTTP1
import NIOSSL
import X509

/// Inbound: every request goes to the local app, carrying the caller's verified SPIFFE ID in
/// `x-mesh-peer-identity` (any value the caller sent is replaced, so the app can trust it).
struct InboundRouter: RequestRouter {
    static let peerIdentityHeader = "x-mesh-peer-identity"
    let app: HostPort

    func route(_ head: HTTPRequestHead, channel: any Channel) -> EventLoopFuture<RoutedRequest> {
        var head = head
        head.headers.remove(name: Self.peerIdentityHeader)
        // An HTTP/2 stream's TLS lives on its parent connection.
        let chain =
            (try? channel.pipeline.syncOperations.nioSSL_peerValidatedCertificateChain())
            ?? (try? channel.parent?.pipeline.syncOperations.nioSSL_peerValidatedCertificateChain())
        if let chain,
            let der = try? chain.leaf.toDERBytes(), let id = try? Certificate(derEncoded: der).spiffeID()
        {
            head.headers.add(name: Self.peerIdentityHeader, value: id.uri)
        }
        return channel.eventLoop.makeSucceededFuture(
            RoutedRequest(head: head, endpoint: EndpointTarget(address: app, identity: nil)))
    }
}
