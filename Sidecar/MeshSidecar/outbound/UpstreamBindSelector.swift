import MeshControlClient
import MeshCore
import NIOCore

/// First handler of an upstream-bind connection: holds reads, asks discovery what the destination
/// speaks, installs the matching pipeline (`configure`), then steps aside. An unknown service or one
/// with no endpoints gets the HTTP pipeline, which answers with the specific 503.
final class UpstreamBindSelector: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    typealias Configure = @Sendable (any Channel, AppProtocol, DiscoveredService) throws -> Void

    private let service: ServiceName
    private let cache: EndpointCache
    private let configure: Configure
    private var started = false

    init(service: ServiceName, cache: EndpointCache, configure: @escaping Configure) {
        self.service = service
        self.cache = cache
        self.configure = configure
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { decide(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        decide(context)
        context.fireChannelActive()
    }

    /// No reads until the pipeline is chosen.
    func read(context: ChannelHandlerContext) {}

    private func decide(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        cache.resolve(service, on: context.eventLoop).hop(to: context.eventLoop).assumeIsolated().whenComplete {
            result in
            let channel = context.channel
            let snapshot =
                (try? result.get())
                ?? DiscoveredService(service: self.service, known: false, endpoints: [], revision: 0)
            let label = snapshot.endpoints.first?.labels[AppProtocol.label]
            let appProtocol = snapshot.endpoints.isEmpty ? .http : (label.flatMap(AppProtocol.init(rawValue:)) ?? .http)
            do {
                try self.configure(channel, appProtocol, snapshot)
            } catch {
                channel.close(promise: nil)
                return
            }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            channel.read()
        }
    }
}
