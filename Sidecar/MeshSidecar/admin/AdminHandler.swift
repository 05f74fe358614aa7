import Foundation
import MeshCore
import MeshTelemetry
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Loopback admin endpoints: `/live`, `/ready` (certificate in hand, listeners up, registered, and not refusing
/// inbound requests for want of a policy),
/// `/certs` (identity, serial, validity, seconds to renewal and expiry).
final class AdminHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let tls: TLSState
    let ready: NIOLockedValueBox<Bool>
    let metrics: SidecarMetrics
    let describe: @Sendable () -> String
    /// True while the sidecar fails closed (it ran an AuthorizationPolicy and has none now).
    let policyUnavailable: @Sendable () -> Bool
    let policyVersion: @Sendable () -> UInt64
    private var head: HTTPRequestHead?

    init(
        tls: TLSState, ready: NIOLockedValueBox<Bool>, metrics: SidecarMetrics,
        describe: @escaping @Sendable () -> String, policyUnavailable: @escaping @Sendable () -> Bool = { false },
        policyVersion: @escaping @Sendable () -> UInt64 = { 0 }
    ) {
        self.policyVersion = policyVersion
        self.policyUnavailable = policyUnavailable
        self.tls = tls
        self.ready = ready
        self.metrics = metrics
        self.describe = describe
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let (status, body) = answer(head)
            var headers = HTTPHeaders()
            let type =
                head.uri == "/metrics"
                ? "text/plain; version=0.0.4" : body.hasPrefix("{") ? "application/json" : "text/plain"
            headers.add(name: "content-type", value: type)
            headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        let path = String(head.uri.prefix { $0 != "?" })
        switch path {
        case "/metrics":
            metrics.access.policyUnavailable.set(Int64(policyUnavailable() ? 1 : 0))
            return (
                .ok,
                String(
                    decoding: metrics.render(
                        identityNotAfter: tls.current.identity.notAfter, policyVersion: policyVersion()), as: UTF8.self)
            )
        case "/config": return (.ok, describe())
        case "/loglevel": return logLevel(head)
        case "/live": return (.ok, "live\n")
        case "/ready":
            if policyUnavailable() {
                return (
                    .serviceUnavailable,
                    "not ready: policy unavailable (this sidecar ran an AuthorizationPolicy and cannot load one; inbound requests are refused with 503 policy_unavailable until the control plane sends a policy)\n"
                )
            }
            return ready.withLockedValue { $0 } ? (.ok, "ready\n") : (.serviceUnavailable, "not ready\n")
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
        default: return (.notFound, "not found: try /live, /ready, /certs, /metrics, /config, /loglevel\n")
        }
    }

    /// `GET /loglevel` shows the level; `PUT /loglevel?level=debug` (or POST) changes it for the process.
    private func logLevel(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        guard head.method == .PUT || head.method == .POST else { return (.ok, "\(MeshLogging.level.rawValue)\n") }
        let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        let level = query.split(separator: "&").first { $0.hasPrefix("level=") }.map { String($0.dropFirst(6)) }
        guard let level, let parsed = MeshLogging.level(parsing: level) else {
            return (.badRequest, "use ?level= one of \(CommandLineFlags.logLevels.joined(separator: ", "))\n")
        }
        MeshLogging.level = parsed
        return (.ok, "\(parsed.rawValue)\n")
    }
}
