import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOTLS
import Testing

@testable import MeshSidecar

/// Hostile HTTP/1 clients against the sidecar's server setup, on an embedded channel with a fake clock.
@Suite struct HTTPServerHardeningTests {
    /// Answers every complete request with 204, like a healthy route would.
    final class NoContent: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .end = unwrapInboundIn(data) {
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .noContent))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }

    func server(_ limits: HTTPLimits = HTTPLimits()) throws -> (EmbeddedChannel, EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        try HTTPServerSetup.configure(channel.pipeline.syncOperations, limits: limits)
        try channel.pipeline.syncOperations.addHandler(NoContent())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, loop)
    }

    func send(_ channel: EmbeddedChannel, _ text: String) {
        _ = try? channel.writeInbound(ByteBuffer(string: text))
    }

    func response(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func oversizedHeadersGet431AndTheConnectionCloses() throws {
        let (channel, _) = try server()
        send(channel, "GET / HTTP/1.1\r\nHost: a\r\nx-big: \(String(repeating: "a", count: 70_000))\r\n\r\n")
        let text = try response(channel)
        #expect(text.hasPrefix("HTTP/1.1 431"), "\(text.prefix(80))")
        #expect(text.lowercased().contains("x-mesh-error: header_too_large"))
        #expect(!channel.isActive)
    }

    @Test func anOversizedRequestLineGets431() throws {
        let (channel, _) = try server()
        send(channel, "GET /\(String(repeating: "a", count: 70_000)) HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try response(channel).hasPrefix("HTTP/1.1 431"))
    }

    @Test func tooManyHeaderFieldsGet431() throws {
        let (channel, _) = try server()
        let fields = (0..<150).map { "x-\($0): 1\r\n" }.joined()
        send(channel, "GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n")
        #expect(try response(channel).hasPrefix("HTTP/1.1 431"))
    }

    @Test func malformedRequestsGet400() throws {
        let (channel, _) = try server()
        send(channel, "GET / HTTP/1.1\r\nHost a-without-colon\r\n\r\n")
        let text = try response(channel)
        #expect(text.hasPrefix("HTTP/1.1 400"), "\(text)")
        #expect(text.lowercased().contains("x-mesh-error: malformed_request"))
        #expect(!channel.isActive)
    }

    @Test func aTrickledHeadIsClosedAfterTheHeadTimeout() throws {
        let (channel, loop) = try server()
        send(channel, "GET / HTTP/1.1\r\nHo")
        loop.advanceTime(by: .seconds(9))
        send(channel, "st: a\r\n")
        #expect(channel.isActive, "still inside the 10 s window")
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed 10 s after the request's first byte")
    }

    @Test func idleKeepAliveConnectionsAndPromptRequestsAreNotCut() throws {
        let (channel, loop) = try server()
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "no bytes, no clock")
        send(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try response(channel).hasPrefix("HTTP/1.1 204"))
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "the head arrived in time; idle afterwards is fine")
        send(channel, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(try response(channel).hasPrefix("HTTP/1.1 204"), "the next request works too")
    }

    @Test func aStalledTLSHandshakeIsClosed() throws {
        let loop = EmbeddedEventLoop()
        let stalled = EmbeddedChannel(handler: TLSHandshakeTimeoutHandler(limit: .seconds(10)), loop: loop)
        try stalled.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let completed = EmbeddedChannel(handler: TLSHandshakeTimeoutHandler(limit: .seconds(10)), loop: loop)
        try completed.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        completed.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        loop.advanceTime(by: .seconds(11))
        #expect(!stalled.isActive)
        #expect(completed.isActive)
    }
}
