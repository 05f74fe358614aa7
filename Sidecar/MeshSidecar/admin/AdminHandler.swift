import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Loopback admin endpoints: `/live`, `/ready` (certificate in hand, listeners up, registered),
/// `/certs` (identity, serial, validity, seconds to renewal and expiry).
final class AdminHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let tls: TLSState
    let ready: NIOLockedValueBox<Bool>
    private var path = ""

    init(tls: TLSState, ready: NIOLockedValueBox<Bool>) {
        self.tls = tls
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): path = head.uri
        case .body: break
        case .end:
            let (status, body) = answer(path)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: body.hasPrefix("{") ? "application/json" : "text/plain")
            headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func answer(_ path: String) -> (HTTPResponseStatus, String) {
        switch path {
        case "/live": return (.ok, "live\n")
        case "/ready": return ready.withLockedValue { $0 } ? (.ok, "ready\n") : (.serviceUnavailable, "not ready\n")
        case "/certs":
            let s = tls.current
            let id = s.identity
            let iso = ISO8601DateFormatter()
            let json = """
                {"identity":"\(id.spiffeID)","serial":"\(id.serialHex)","not_before":"\(iso.string(from: id.notBefore))",\
                "not_after":"\(iso.string(from: id.notAfter))","seconds_until_expiry":\(Int(id.notAfter.timeIntervalSinceNow)),\
                "seconds_until_renewal":\(max(0, Int(s.renewAt.timeIntervalSinceNow))),"trust_bundle_roots":\(id.bundle.roots.count)}

                """
            return (.ok, json)
        default: return (.notFound, "not found: try /live, /ready, /certs\n")
        }
    }
}
