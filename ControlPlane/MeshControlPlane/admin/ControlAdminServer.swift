import MeshCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The control plane's loopback admin port (`--admin`, 127.0.0.1:7000): `/metrics` (Prometheus), `/ready`
/// (the API listener is up and the policy store open), `/live`.
enum ControlAdminServer {
    static func bind(_ address: HostPort, metrics: ControlPlaneMetrics, ready: NIOLockedValueBox<Bool>) async throws
        -> any Channel
    {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ControlAdminHandler(metrics: metrics, ready: ready))
                }
            }
            .bind(host: address.host, port: address.port).get()
    }
}

final class ControlAdminHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: ControlPlaneMetrics
    let ready: NIOLockedValueBox<Bool>

    init(metrics: ControlPlaneMetrics, ready: NIOLockedValueBox<Bool>) {
        self.metrics = metrics
        self.ready = ready
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.prefix { $0 != "?" }
        let (status, type, body): (HTTPResponseStatus, String, [UInt8]) =
            switch path {
            case "/metrics": (.ok, "text/plain; version=0.0.4", metrics.render())
            case "/live": (.ok, "text/plain", Array("live\n".utf8))
            case "/ready":
                ready.withLockedValue { $0 }
                    ? (.ok, "text/plain", Array("ready\n".utf8))
                    : (.serviceUnavailable, "text/plain", Array("not ready\n".utf8))
            default: (.notFound, "text/plain", Array("not found: try /live, /ready, /metrics\n".utf8))
            }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: type)
        headers.add(name: "content-length", value: String(body.count))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
