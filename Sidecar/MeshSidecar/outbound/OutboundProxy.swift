import Logging
import MeshControlClient
import MeshCore
import NIOCore
import NIOExtras
import NIOHTTP1

/// The outbound direction, app socket → peer sidecar, assembled in one place. The same assembly serves
/// the HTTP proxy listener and each explicit upstream bind (which differ only in their router).
enum OutboundProxy {
    static func bind(
        _ address: HostPort, router: OutboundRouter, pools: PoolSet, limits: HTTPLimits, metrics: SidecarMetrics,
        drain: DrainGroup, logger: Logger
    ) async throws -> any Channel {
        try await Listener.bind(address, group: pools.group, drain: drain) { channel in
            let ops = channel.pipeline.syncOperations
            // Plain HTTP/1.1 from the local app, with limits: 431, 400 and the head timeout as inbound.
            try HTTPServerSetup.configure(ops, limits: limits)
            // Resolve the destination, lease an mTLS connection that proved its identity, forward.
            try ops.addHandler(
                HTTPForwardingHandler(
                    router: router, pool: pools.pool(for: channel.eventLoop), direction: .outbound, metrics: metrics,
                    logger: logger))
        }
    }

    /// An explicit upstream bind (`--upstream NAME=HOST:PORT`): one destination service, carried as HTTP
    /// or as opaque TCP according to the protocol its instances registered.
    static func bindUpstream(
        _ address: HostPort, service: ServiceName, router: OutboundRouter, cache: EndpointCache, tls: TLSState,
        pools: PoolSet, limits: HTTPLimits, metrics: SidecarMetrics, drain: DrainGroup, logger: Logger
    ) async throws -> any Channel {
        try await Listener.bind(address, group: pools.group, drain: drain) { channel in
            // Decide per connection, from discovery, before reading a byte.
            try channel.pipeline.syncOperations.addHandler(
                UpstreamBindSelector(service: service, cache: cache) { channel, appProtocol, snapshot in
                    let ops = channel.pipeline.syncOperations
                    switch appProtocol {
                    case .http:
                        try HTTPServerSetup.configure(ops, limits: limits)
                        try ops.addHandler(
                            HTTPForwardingHandler(
                                router: router, pool: pools.pool(for: channel.eventLoop), direction: .outbound,
                                metrics: metrics, logger: logger))
                    case .tcp:
                        let endpoint = snapshot.endpoints[Int.random(in: 0..<snapshot.endpoints.count)]
                        let target = EndpointTarget(
                            address: endpoint.address, identity: .workload(service, in: tls.trustDomain))
                        let connector = MTLSUpstreamConnector(tls: tls, metrics: metrics, speaksHTTP: false)
                        try ops.addHandler(
                            TCPRelayHandler(start: .onActive, logger: logger) { loop in
                                connector.connect(target, on: loop)
                            })
                    }
                })
        }
    }
}
