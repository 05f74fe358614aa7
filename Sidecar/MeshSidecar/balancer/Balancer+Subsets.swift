import MeshControlClient
import NIOCore

extension Balancer {
    /// The endpoints of `snapshot` in `subset`, computed once per endpoint set (not per request). The set is
    /// compared as a whole, not by revision (revisions start over when the control plane restarts); the cache
    /// holds the very array the snapshot does, so the comparison is one of identity while nothing changed.
    func members(of subset: SubsetSelector, in snapshot: DiscoveredService) -> [DiscoveredEndpoint] {
        if let cached = subsetMembers[subset.name], cached.labels == subset.labels, cached.all == snapshot.endpoints {
            // Equal but another array (a new revision with the same endpoints): keep this one, so the next
            // comparison is one of identity again.
            if cached.revision != snapshot.revision {
                subsetMembers[subset.name] = (snapshot.endpoints, snapshot.revision, subset.labels, cached.endpoints)
            }
            return cached.endpoints
        }
        let endpoints = snapshot.endpoints.filter(subset.contains)
        subsetMembers[subset.name] = (snapshot.endpoints, snapshot.revision, subset.labels, endpoints)
        return endpoints
    }

    /// A uniform number in 0..<1.
    func roll() -> Double { Double.random(in: 0..<1, using: &random) }

    /// True with probability `chance` (0...1).
    func chance(_ chance: Double) -> Bool { chance >= 1 || (chance > 0 && roll() < chance) }

    /// Where one request of `routes` goes: the subset its route names (nil if it has no members), else a
    /// subset of the split by weight among those with members (nil if none has), else every endpoint.
    func subset(
        for route: TrafficRoutes.Route?, in routes: TrafficRoutes, _ snapshot: DiscoveredService
    ) -> Result<SubsetSelector?, ProxyError> {
        if let subset = route?.subset {
            guard !members(of: subset, in: snapshot).isEmpty else {
                return .failure(
                    ProxyError(
                        .noEndpoints,
                        "subset \(subset.name) of \(snapshot.service) (route \(route!.name)) has no endpoints"))
            }
            return .success(subset)
        }
        guard !routes.split.isEmpty else { return .success(nil) }
        guard let subset = routes.pickSplit(roll: roll(), isLive: { !members(of: $0, in: snapshot).isEmpty })
        else {
            return .failure(
                ProxyError(
                    .noEndpoints,
                    "no subset of the split of \(snapshot.service) (\(routes.split.map(\.subset.name).joined(separator: ", "))) has endpoints"
                ))
        }
        return .success(subset)
    }
}
