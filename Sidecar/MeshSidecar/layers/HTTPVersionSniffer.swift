import NIOCore

/// First handler of a plaintext HTTP listener: looks at the first bytes of a connection, and if they are
/// the HTTP/2 client preface (`PRI * HTTP/2.0…`, RFC 9113 §3.4) installs HTTP/2, else HTTP/1.1. A
/// connection that stops part-way through the preface is closed after `timeout`.
final class HTTPVersionSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    enum Version { case http1, http2 }
    typealias Configure = (any Channel, Version) throws -> Void

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let timeout: TimeAmount
    private let configure: Configure
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, configure: @escaping Configure) {
        self.timeout = timeout
        self.configure = configure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
            let channel = context.channel
            timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        } else {
            buffered!.writeBuffer(&incoming)
        }
        guard let bytes = buffered, let version = Self.classify(bytes.readableBytesView) else { return }
        timer?.cancel()
        do {
            try configure(context.channel, version)
        } catch {
            context.close(promise: nil)
            return
        }
        // Hand the bytes to the new handlers first: once removed, this handler's context reaches nothing.
        buffered = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    /// nil while the bytes so far are a proper prefix of the preface.
    static func classify(_ bytes: ByteBufferView) -> Version? {
        for (byte, expected) in zip(bytes, preface) where byte != expected { return .http1 }
        return bytes.count >= preface.count ? .http2 : nil
    }
}
