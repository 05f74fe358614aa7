import NIOCore

/// Sits right behind NIOSSL and merges the buffers written between two flushes into one, up to a TLS record's
/// 16 KiB, so that a flush becomes one TLS record: NIOSSL seals every buffer it is given as a record of its own,
/// and the HTTP codecs write a head, a body and an end (or HTTP/2 frame headers and payloads) separately — a
/// small response was 3 records where 1 does (as Envoy and nginx do). Nothing waits: a flush goes out at once.
final class TLSRecordCoalescer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let recordSize = 16 * 1024

    private var pending: ByteBuffer?
    private var merged = false
    private var promise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        guard let first = pending else {
            pending = buffer
            merged = false
            self.promise = promise
            return
        }
        guard first.readableBytes + buffer.readableBytes <= Self.recordSize else {
            writePending(context)
            pending = buffer
            merged = false
            self.promise = promise
            return
        }
        if !merged {
            var copy = context.channel.allocator.buffer(capacity: Self.recordSize)
            copy.writeImmutableBuffer(first)
            pending = copy
            merged = true
        }
        pending!.writeImmutableBuffer(buffer)
        if let promise {
            if let held = self.promise { held.futureResult.cascade(to: promise) } else { self.promise = promise }
        }
    }

    func flush(context: ChannelHandlerContext) {
        writePending(context)
        context.flush()
    }

    /// The connection died beneath us: a held write can no longer go anywhere.
    func channelInactive(context: ChannelHandlerContext) {
        let promise = self.promise
        pending = nil
        self.promise = nil
        promise?.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        writePending(context)
        context.close(mode: mode, promise: promise)
    }

    private func writePending(_ context: ChannelHandlerContext) {
        guard let buffer = pending else { return }
        let promise = self.promise
        pending = nil
        self.promise = nil
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}
