import MeshCore
import MeshPolicy

@testable import MeshSidecar

/// Compiled destination policies from a line or two of TrafficPolicy spec, the way a sidecar gets them.
enum PolicyFixtures {
    /// The policy for `orders` with `spec` (YAML flow or block lines under `spec:`, e.g. `loadBalancing: random`).
    static func destination(_ spec: String) throws -> DestinationPolicy {
        let yaml = """
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

    struct PolicyFixtureError: Error { let yaml: String }
}
