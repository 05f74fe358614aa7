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
        try HTTPServerSetup.configureSniffing(channel, limits: limits) { _, _ in NoContent() }
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

    /// Answers requests only when told (`answerNext`), like a slow route.
    final class Held: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        var waiting: [ChannelHandlerContext] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .end = unwrapInboundIn(data) { waiting.append(context) }
        }
        func answerNext() {
            let context = waiting.removeFirst()
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .noContent))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// A bad request pipelined behind a good one is answered after it, not instead of it.
    @Test func aParseErrorInAPipelinedRequestIsAnsweredInItsTurn() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let held = Held()
        try HTTPServerSetup.configureSniffing(channel, limits: HTTPLimits()) { _, _ in held }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        send(
            channel,
            "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nx-big: \(String(repeating: "a", count: 70_000))\r\n\r\n"
        )
        #expect(try response(channel).isEmpty, "nothing is answered before /slow")
        held.answerNext()
        let text = try response(channel)
        #expect(text.hasPrefix("HTTP/1.1 204"), "\(text.prefix(80))")
        #expect(text.contains("HTTP/1.1 431"), "then the error, in its turn")
        #expect(!channel.isActive)
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

    // MARK: HTTP/2 on the same plaintext listener

    /// The frames in bytes a server wrote: (type, stream, payload).
    func frames(_ channel: EmbeddedChannel) throws -> [(type: UInt8, stream: UInt32, payload: [UInt8])] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        var frames: [(UInt8, UInt32, [UInt8])] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            let stream = bytes[i + 5..<i + 9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7fff_ffff
            frames.append((bytes[i + 3], stream, Array(bytes[i + 9..<min(bytes.count, i + 9 + length)])))
            i += 9 + length
        }
        return frames
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let emptySettings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]

    @Test func thePrefaceDecidesTheVersion() {
        let preface = ByteBuffer(bytes: Self.preface)
        #expect(HTTPVersionSniffer.classify(preface.readableBytesView) == .http2)
        #expect(HTTPVersionSniffer.classify(ByteBuffer(string: "PRI * HT").readableBytesView) == nil)
        #expect(HTTPVersionSniffer.classify(ByteBuffer(string: "PRIX").readableBytesView) == .http1)
        #expect(HTTPVersionSniffer.classify(ByteBuffer(string: "GET / HTTP/1.1").readableBytesView) == .http1)
    }

    @Test func anHTTP2ProtocolViolationGetsGOAWAYWithProtocolError() throws {
        let (channel, _) = try server()
        // A DATA frame on stream 0 is a connection error of type PROTOCOL_ERROR (RFC 9113 §6.1).
        _ = try? channel.writeInbound(
            ByteBuffer(bytes: Self.preface + Self.emptySettings + [0, 0, 0, 0, 0, 0, 0, 0, 0]))
        let written = try frames(channel)
        #expect(written.first?.type == 4, "the server's SETTINGS come first")
        let goAway = try #require(written.first { $0.type == 7 }, "a GOAWAY frame")
        #expect(Array(goAway.payload[4..<8]) == [0, 0, 0, 1], "error code PROTOCOL_ERROR")
        #expect(!channel.isActive, "and the connection is closed")
    }

    @Test func anHTTP2RequestIsServedOnTheSameListener() throws {
        let (channel, _) = try server()
        // HEADERS (END_HEADERS|END_STREAM) on stream 1 with HPACK static-table entries only:
        // :method GET (0x82), :scheme http (0x86), :path / (0x84), :authority "a" (literal, indexed name 1).
        let block: [UInt8] = [0x82, 0x86, 0x84, 0x41, 0x01, 0x61]
        let headers: [UInt8] = [0, 0, UInt8(block.count), 1, 0x05, 0, 0, 0, 1] + block
        _ = try? channel.writeInbound(ByteBuffer(bytes: Self.preface + Self.emptySettings + headers))
        let written = try frames(channel)
        let response = try #require(written.first { $0.type == 1 && $0.stream == 1 }, "a HEADERS response on stream 1")
        #expect(response.payload.first == 0x89, ":status 204 from the static table")
        #expect(channel.isActive)
    }

    @Test func aStalledHTTP2PrefaceIsClosedAfterTheHeadTimeout() throws {
        let (channel, loop) = try server()
        send(channel, "PRI * HTTP/2.0\r\n")
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }
}
