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
            // Plain HTTP from the local app: HTTP/2 by prior knowledge or HTTP/1.1 (with limits: 431, 400 and
            // the head timeout as inbound). Per request: resolve the destination, lease an mTLS connection
            // (or an HTTP/2 stream on one) that proved its identity, forward.
            try HTTPServerSetup.configureSniffing(
                channel, limits: limits, forwarder: forwarder(router, pools: pools, metrics: metrics, logger: logger))
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
                    switch appProtocol {
                    case .http, .http2:
                        try HTTPServerSetup.configureSniffing(
                            channel, limits: limits,
                            forwarder: forwarder(router, pools: pools, metrics: metrics, logger: logger))
                    case .tcp:
                        let endpoint = snapshot.endpoints[Int.random(in: 0..<snapshot.endpoints.count)]
                        let target = EndpointTarget(
                            address: endpoint.address, identity: .workload(service, in: tls.trustDomain))
                        let connector = MTLSUpstreamConnector(tls: tls, metrics: metrics, wire: .bytes)
                        try channel.pipeline.syncOperations.addHandler(
                            TCPRelayHandler(start: .onActive, logger: logger) { loop in
                                connector.connect(target, on: loop).map(\.channel)
                            })
                    }
                })
        }
    }

    private static func forwarder(
        _ router: OutboundRouter, pools: PoolSet, metrics: SidecarMetrics, logger: Logger
    ) -> HTTPServerSetup.Forwarder {
        { channel in
            HTTPForwardingHandler(
                router: router, pool: pools.pool(for: channel.eventLoop), direction: .outbound, metrics: metrics,
                logger: logger)
        }
    }
}
