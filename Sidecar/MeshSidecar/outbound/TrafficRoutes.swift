import MeshControlClient
import MeshPolicy
import NIOCore
import NIOHTTP1

/// The instances of a destination one subset names: those whose registration labels include all of `labels`.
struct SubsetSelector: Sendable, Equatable {
    let name: String
    let labels: [String: String]

    func contains(_ endpoint: DiscoveredEndpoint) -> Bool {
        labels.allSatisfy { endpoint.labels[$0.key] == $0.value }
    }
}

/// A fault a route injects, compiled: chances as fractions of 1.
struct InjectedFault: Sendable, Equatable {
    struct Delay: Sendable, Equatable {
        let duration: TimeAmount
        let chance: Double
    }

    struct Abort: Sendable, Equatable {
        let httpStatus: Int
        let grpcStatus: Int
        let chance: Double
    }

    let delay: Delay?
    let abort: Abort?

    init(_ fault: TrafficPolicy.Fault) throws {
        delay = try fault.delay.map { Delay(duration: try TimeAmount(parsing: $0.fixed), chance: $0.percent / 100) }
        abort = fault.abort.map { abort in
            let http = abort.httpStatus ?? 503
            return Abort(
                httpStatus: http, grpcStatus: abort.grpcStatus ?? Self.grpcStatus(forHTTP: http),
                chance: abort.percent / 100)
        }
    }

    /// gRPC's mapping of HTTP statuses to codes (doc/http-grpc-status-mapping.md).
    static func grpcStatus(forHTTP status: Int) -> Int {
        switch status {
        case 400: 13
        case 401: 16
        case 403: 7
        case 404: 12
        case 429, 502, 503, 504: 14
        default: 2
        }
    }
}

/// A destination's routes and weighted split, compiled: which subset a request goes to, and what fault it
/// gets. Routes are tried in order; the first that matches decides; a request no route sends to a subset takes
/// the split (or every endpoint when there is none).
struct TrafficRoutes: Sendable {
    struct Route: Sendable {
        let name: String
        let match: RouteMatcher?
        let subset: SubsetSelector?
        let fault: InjectedFault?
    }

    struct Weighted: Sendable, Equatable {
        let subset: SubsetSelector
        let weight: Int
    }

    let routes: [Route]
    let split: [Weighted]

    init(_ spec: TrafficPolicy.Spec?, subsets: [ServicePolicy.Subset]) throws {
        func selector(_ name: String) -> SubsetSelector {
            SubsetSelector(name: name, labels: subsets.first { $0.name == name }?.labels ?? [:])
        }
        routes = try (spec?.routes ?? []).enumerated().map { index, route in
            Route(
                name: route.name ?? "routes[\(index)]", match: route.match.map(RouteMatcher.init),
                subset: route.subset.map(selector),
                fault: try route.fault.map(InjectedFault.init))
        }
        split = (spec?.split ?? []).map { Weighted(subset: selector($0.subset), weight: $0.weight) }
    }

    var isEmpty: Bool { routes.isEmpty && split.isEmpty }

    /// The first route `head` matches.
    func route(for head: HTTPRequestHead) -> Route? {
        routes.first { $0.match?.matches(head) ?? true }
    }

    /// One subset of the split by weight, among those `isLive` says have endpoints: a subset without live
    /// endpoints gives its weight to the others in proportion (all of them at weight 0: shared equally). nil
    /// when no subset of the split has any. `roll` is a uniform number in 0..<1.
    func pickSplit(roll: Double, isLive: (SubsetSelector) -> Bool) -> SubsetSelector? {
        var live: [Weighted] = []
        live.reserveCapacity(split.count)
        var total = 0
        for entry in split where isLive(entry.subset) {
            live.append(entry)
            total += entry.weight
        }
        guard !live.isEmpty else { return nil }
        guard total > 0 else { return live[min(Int(roll * Double(live.count)), live.count - 1)].subset }
        var point = roll * Double(total)
        for entry in live {
            point -= Double(entry.weight)
            if point < 0 { return entry.subset }
        }
        return live.last { $0.weight > 0 }!.subset
    }
}
