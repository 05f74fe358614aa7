import Foundation
import MeshCore
import MeshFrontDoor
import MeshPolicy
import NIOConcurrencyHelpers
import Prometheus

/// The traffic direction a metric belongs to.
enum Direction: String, CaseIterable, Sendable {
    case inbound, outbound
}

/// The sidecar's listeners, as metric labels (every upstream bind counts as `upstream`).
enum ListenerKind: String, CaseIterable, Sendable {
    case inbound, outbound, upstream, admin
}

/// The sidecar's Prometheus metrics. Label sets are fixed and documented (README, "Metrics"): the per-peer
/// golden metrics (`PeerMetrics`) grow with the services a sidecar talks to and shrink when one goes quiet;
/// every other series is created up front, so the data path only increments.
final class SidecarMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let peers: PeerMetrics
    let tracing: TraceMetrics
    private let handshakeFailures: [Direction: [TLSFailure: Counter]]
    private let resets: [Direction: (upstream: Counter, downstream: Counter)]
    private let identityExpiry: Gauge
    private let identityExpiresIn: Gauge
    private let policyVersion: Gauge
    private let peerConnections: [String: Counter]
    private let frontDoorClosed: [ListenerKind: [FrontDoorEvent: Counter]]
    private let listenerConnections: [ListenerKind: Gauge]
    private let resilience: ResilienceMetrics
    let access: AccessMetrics
    private let gateList = NIOLockedValueBox<[ConnectionGate]>([])
    /// Every listener's front door.
    var gates: [ConnectionGate] { gateList.withLockedValue { $0 } }

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10),
    ]

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        peers = PeerMetrics(registry, buckets: Self.latencyBuckets)
        tracing = TraceMetrics(registry)
        var handshakeFailures: [Direction: [TLSFailure: Counter]] = [:]
        for direction in Direction.allCases {
            let d = ("direction", direction.rawValue)
            handshakeFailures[direction] = Dictionary(
                uniqueKeysWithValues: TLSFailure.allCases.map { reason in
                    (
                        reason,
                        registry.makeCounter(
                            name: "mesh_tls_handshake_failures_total", labels: [d, ("reason", reason.rawValue)],
                            help: "TLS handshakes that failed or were refused, by direction and reason")
                    )
                })
        }
        resets = Dictionary(
            uniqueKeysWithValues: Direction.allCases.map { direction in
                let make = { (by: String) in
                    registry.makeCounter(
                        name: "mesh_http_resets_total", labels: [("direction", direction.rawValue), ("by", by)],
                        help: "Exchanges cut short: by the upstream after its response started, or by the client")
                }
                return (direction, (make("upstream"), make("downstream")))
            })
        resilience = ResilienceMetrics(registry)
        access = AccessMetrics(registry)
        self.handshakeFailures = handshakeFailures
        peerConnections = Dictionary(
            uniqueKeysWithValues: Self.peerProtocols.map { wire in
                (
                    wire,
                    registry.makeCounter(
                        name: "mesh_peer_connections_opened_total", labels: [("protocol", wire)],
                        help: "mTLS connections opened to peer sidecars, by what they carry")
                )
            })
        identityExpiry = registry.makeGauge(
            name: "mesh_identity_expiry_timestamp_seconds", help: "When the current workload certificate expires")
        identityExpiresIn = registry.makeGauge(
            name: "mesh_identity_expires_in_seconds", help: "Seconds until the current workload certificate expires")
        policyVersion = registry.makeGauge(
            name: "mesh_policy_version", help: "The policy version this sidecar runs (0: none received yet)")
        frontDoorClosed = Dictionary(
            uniqueKeysWithValues: ListenerKind.allCases.map { listener in
                (
                    listener,
                    Dictionary(
                        uniqueKeysWithValues: FrontDoorEvent.allCases.map { event in
                            (
                                event,
                                registry.makeCounter(
                                    name: "mesh_listener_closed_total",
                                    labels: [("listener", listener.rawValue), ("reason", event.rawValue)],
                                    help: "Connections the front door closed: over the cap, handshake or idle timeout")
                            )
                        })
                )
            })
        listenerConnections = Dictionary(
            uniqueKeysWithValues: ListenerKind.allCases.map { listener in
                (
                    listener,
                    registry.makeGauge(
                        name: "mesh_listener_connections", labels: [("listener", listener.rawValue)],
                        help: "Connections open on the sidecar's listeners, by listener")
                )
            })
    }

    /// The front door of one listener, counting what it closes here.
    func gate(_ listener: ListenerKind, _ limits: ListenerLimits) -> ConnectionGate {
        let counters = frontDoorClosed[listener]!
        let gate = ConnectionGate(listener: listener.rawValue, limits: limits) { event, _ in
            counters[event]!.increment()
        }
        gateList.withLockedValue { $0.append(gate) }
        return gate
    }

    /// Reads an exchange's one completion event, counted against the peer it was with.
    func exchangeCompleted(_ completion: ExchangeCompletion, peer: String) {
        let direction = completion.direction
        let series = peers.series(direction, peer)
        switch completion.outcome {
        case .responded(let status), .failed(_, let status), .upstreamReset(let status), .cutShort(let status):
            // Counted by the HTTP status, also for gRPC callers (who see 200 and a grpc-status).
            series.requests[min(max(status / 100, 1), 5) - 1].increment()
            series.latency.record(completion.duration)
        case .upgraded:
            series.requests[0].increment()
            series.latency.record(completion.duration)
        case .downstreamClosed:
            break
        }
        switch completion.outcome {
        case .failed(let cause, _): peers.error(series, cause: cause.rawValue)
        case .upstreamReset, .cutShort: resets[direction]!.upstream.increment()
        case .downstreamClosed: resets[direction]!.downstream.increment()
        case .responded, .upgraded: break
        }
        if completion.retries > 0 { series.retries.increment(by: Int64(completion.retries)) }
        if let timeout = completion.timeout { resilience.timeouts[direction]![timeout]!.increment() }
        if completion.budgetExhausted { series.budgetExhausted.increment() }
    }

    /// One authorization decision (a request or a TCP connection).
    func authorized(_ decision: AccessMetrics.Decision, mode: AuthorizationPolicy.Mode) {
        access.decisions[mode]![decision]!.increment()
    }

    /// An endpoint of `service` was ejected by outlier detection.
    func ejected(_ service: String) { peers.ejected(peers.series(.outbound, service)) }

    /// A sidecar-made refusal outside an HTTP exchange (a TCP connection an AuthorizationPolicy refused).
    func proxyError(_ direction: Direction, _ cause: ProxyError.Cause, peer: String) {
        peers.error(peers.series(direction, peer), cause: cause.rawValue)
    }

    func handshakeFailed(_ direction: Direction, _ reason: TLSFailure) {
        handshakeFailures[direction]![reason]!.increment()
    }

    static let peerProtocols = ["h2", "http/1.1", "tcp"]

    /// One more verified connection to a peer sidecar carrying `wire` (`h2`, `http/1.1` or `tcp`).
    func peerConnectionOpened(_ wire: String) { peerConnections[wire]?.increment() }

    /// Prometheus text exposition, with the gauges that are read rather than pushed brought up to date.
    func render(identityNotAfter: Date, policyVersion version: UInt64 = 0) -> [UInt8] {
        identityExpiry.set(identityNotAfter.timeIntervalSince1970)
        identityExpiresIn.set(identityNotAfter.timeIntervalSinceNow.rounded())
        policyVersion.set(Int64(version))
        var open: [ListenerKind: Int] = [:]
        for gate in gates {
            if let kind = ListenerKind(rawValue: gate.listener) { open[kind, default: 0] += gate.openConnections }
        }
        for (kind, gauge) in listenerConnections { gauge.set(Int64(open[kind] ?? 0)) }
        return registry.emitToBuffer()
    }
}
