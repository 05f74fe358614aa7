import MeshCore
import MeshPolicy

@testable import MeshSidecar

/// Compiled destination policies from a line or two of TrafficPolicy spec, the way a sidecar gets them.
enum PolicyFixtures {
    /// The documents: a TrafficPolicy for `orders` with `spec` (YAML lines under `spec:` after `service:`), after a
    /// Service for orders defining subsets `stable` and `canary` (label `track`) when `subsets`.
    static func load(_ spec: String, subsets: Bool = false) throws -> [PolicyDocument] {
        let service = """
            apiVersion: meshwork.dev/v1
            kind: Service
            metadata: {name: orders}
            spec:
              subsets:
                - {name: stable, labels: {track: stable}}
                - {name: canary, labels: {track: canary}}
            ---

            """
        let yaml =
            (subsets ? service : "") + """
                apiVersion: meshwork.dev/v1
                kind: TrafficPolicy
                metadata: {name: orders}
                spec:
                  service: orders
                \(spec.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))

                """
        guard case .success(let loaded) = PolicyLoader.load(yaml: yaml, file: "fixture.yaml") else {
            throw PolicyFixtureError(yaml: yaml)
        }
        return loaded.map(\.document)
    }

    /// The policy for `orders` with `spec` (YAML flow or block lines under `spec:`, e.g. `loadBalancing: random`).
    static func destination(_ spec: String, subsets: Bool = false) throws -> DestinationPolicy {
        let snapshot = try PolicySnapshot.compile(
            version: 1, documents: try load(spec, subsets: subsets), for: try ServiceName("frontend"))
        return snapshot.destination(try ServiceName("orders"))
    }

    /// A TrafficPolicy spec for `orders` as validated.
    static func traffic(_ spec: String) throws -> TrafficPolicy.Spec {
        guard case .traffic(let policy)? = try load(spec).first else { throw PolicyFixtureError(yaml: spec) }
        return policy.spec
    }

    struct PolicyFixtureError: Error { let yaml: String }
}
