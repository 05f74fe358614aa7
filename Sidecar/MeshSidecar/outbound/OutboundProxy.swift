import Logging
import MeshControlClient
import MeshCore
import MeshFrontDoor
import NIOCore
import NIOExtras
import NIOHTTP1

/// What the outbound stack is built from: the sidecar's shared parts, made once in `Sidecar`.
struct OutboundParts: Sendable {
    let cache: EndpointCache
    let tls: TLSState
    let policy: SidecarPolicy
    let balancers: PerEventLoop<Balancers>
    /// Pools of verified connections to peer sidecars: HTTP/1.1 keep-alive for HTTP/1.1 callers (ALPN
    /// `http/1.1`), one shared h2 connection per endpoint for HTTP/2 and gRPC callers (ALPN `h2`).
    let http1Pools: PoolSet
    let http2Pools: PoolSet
    let limits: HTTPLimits
    let metrics: SidecarMetrics
    let telemetry: ExchangeTelemetry
    let drain: DrainGroup
    let logger: Logger
}

/// The outbound direction, app socket → peer sidecar, assembled in one place for the HTTP proxy listener and
/// for each explicit upstream bind (which differ only in the route step: a bind names its service).
enum OutboundProxy {
    static func bind(
        _ address: HostPort, fixedService: ServiceName? = nil, gate: ConnectionGate, _ parts: OutboundParts
    ) async throws -> any Channel {
        let router = OutboundRouter(
            cache: parts.cache, balancers: parts.balancers, policy: parts.policy, fixedService: fixedService,
            metrics: parts.metrics)
        // accept → front door: a slot under the cap, closed if no byte arrives in time or none flows for the idle
        // timeout (plaintext: the guard goes first), then per connection:
        return try await Listener.bind(address, group: parts.http1Pools.group, gate: gate, drain: parts.drain) {
            channel in
            guard let service = fixedService else {
                // accept → protocol: HTTP/1.1 or h2c by its preface (limits: 431, 400, head timeout) → the stack
                try HTTPServerSetup.configureSniffing(channel, limits: parts.limits, forwarder: stack(router, parts))
                return
            }
            // accept → an upstream bind speaks what its service's instances registered: HTTP or opaque TCP
            try channel.pipeline.syncOperations.addHandler(
                UpstreamBindSelector(service: service, cache: parts.cache) { channel, appProtocol, snapshot in
                    switch appProtocol {
                    case .http, .http2:
                        try HTTPServerSetup.configureSniffing(
                            channel, limits: parts.limits, forwarder: stack(router, parts))
                    case .tcp:
                        try tcpStack(channel, service: service, snapshot: snapshot, parts)
                    }
                })
        }
    }

    /// Per HTTP/1.1 connection or h2c stream: route → policy → balancer (`OutboundRouter`) → endpoint and
    /// connection (`HTTPForwardingHandler` with the loop's pool), every exchange ending in one completion event.
    private static func stack(_ router: OutboundRouter, _ parts: OutboundParts) -> HTTPServerSetup.Forwarder {
        { channel, downstream in
            // connection: HTTP/1.1 callers go over pooled HTTP/1.1 keep-alive (cheapest per request, measured),
            // HTTP/2 and gRPC callers as streams on one h2 connection per endpoint
            let pools = if case .http1 = downstream { parts.http1Pools } else { parts.http2Pools }
            return HTTPForwardingHandler(
                router: router, pool: pools[channel.eventLoop], direction: .outbound, telemetry: parts.telemetry,
                logger: parts.logger, httpHandlers: downstream.httpHandlers)
        }
    }

    /// Opaque TCP through a bind: balancer → endpoint (the service's identity) → a verified mTLS connection
    /// without ALPN, then bytes both ways.
    private static func tcpStack(
        _ channel: any Channel, service: ServiceName, snapshot: DiscoveredService, _ parts: OutboundParts
    ) throws {
        let balancer = parts.balancers[channel.eventLoop].balancer(for: service)
        let policy = parts.policy.snapshot.destination(service)
        let target = EndpointTarget(
            address: balancer.pick(snapshot, policy: policy, tracked: false).address, identity: balancer.identity)
        let connector = MTLSUpstreamConnector(tls: parts.tls, metrics: parts.metrics, wire: .bytes)
        try channel.pipeline.syncOperations.addHandler(
            TCPRelayHandler(
                start: .onActive, logger: parts.logger,
                counting: (.outbound, parts.metrics.peers, { _ in service.value })
            ) { loop in
                connector.connect(target, on: loop).map(\.channel)
            })
    }
}
