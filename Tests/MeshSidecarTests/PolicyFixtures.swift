import MeshCore
import MeshPolicy

@testable import MeshSidecar

/// Compiled destination policies from a line or two of TrafficPolicy spec, the way a sidecar gets them.
enum PolicyFixtures {
    /// The policy for `orders` with `spec` (YAML flow or block lines under `spec:`, e.g. `loadBalancing: random`).
    /// `subsets`: with a Service for orders defining `stable` and `canary` (label `track`).
    static func destination(_ spec: String, subsets: Bool = false) throws -> DestinationPolicy {
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
        let snapshot = try PolicySnapshot.compile(
            version: 1, documents: loaded.map(\.document), for: try ServiceName("frontend"))
        return snapshot.destination(try ServiceName("orders"))
    }

    /// A TrafficPolicy spec for `orders` as validated.
    static func traffic(_ spec: String) throws -> TrafficPolicy.Spec {
        let yaml = """
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: orders}
            spec:
              service: orders
            \(spec.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))

            """
        guard case .success(let loaded) = PolicyLoader.load(yaml: yaml, file: "fixture.yaml"),
            case .traffic(let policy) = loaded[0].document
        else { throw PolicyFixtureError(yaml: yaml) }
        return policy.spec
    }

    struct PolicyFixtureError: Error { let yaml: String }
}
