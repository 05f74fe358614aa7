import MeshCore
import MeshPolicy

/// One service's AuthorizationPolicy, compiled for the inbound side: who may call which route. A rule allows
/// the callers it lists on the routes it lists (no routes: every route). A request no rule allows is refused
/// if some rule covers its route (the route is restricted to that rule's callers) or if the policy's default
/// is `deny`; otherwise (`default: allow`, a route no rule mentions) it passes. `mode: audit` decides the same
/// way but lets everything through, counting and logging what it would have refused.
///
/// Compiled for the request path: rules are indexed by caller, so a request looks only at its caller's rules and
/// the `*` ones (in order) to be allowed; routes are `RouteMatcher`s. Only a refusal walks every rule, for
/// its reason (and, under `default: allow`, to learn whether a rule covers the route).
struct Authorizer: Sendable, Equatable {
    enum Decision: Equatable, Sendable {
        case allow
        /// Refused: why, for the log and the response body (never the app).
        case deny(String)
    }

    let mode: AuthorizationPolicy.Mode
    let defaultAction: AuthorizationPolicy.Default
    private let rules: [Rule]
    /// For each listed caller, the indices of the rules that allow it, `*` rules included, in rule order.
    private let byCaller: [String: [Int]]
    /// The indices of the `*` rules (for callers no rule names).
    private let wildcard: [Int]

    private struct Rule: Equatable, Sendable {
        /// nil: any workload of the trust domain (`*`).
        let callers: Set<String>?
        let routes: [RouteMatcher]

        /// `*` is any workload of the trust domain: not the operator's or the control plane's identity.
        func allows(_ caller: String?) -> Bool {
            guard let caller else { return false }
            return callers?.contains(caller) ?? true
        }

        func covers(method: String, path: Substring, header: (String) -> String?) -> Bool {
            routes.isEmpty || routes.contains { $0.matches(method: method, path: path, header: header) }
        }
    }

    init(_ spec: AuthorizationPolicy.Spec) {
        mode = spec.mode
        defaultAction = spec.default
        rules = spec.rules.map { rule in
            Rule(callers: rule.from.contains("*") ? nil : Set(rule.from), routes: rule.to.map(RouteMatcher.init))
        }
        let rules = self.rules
        var byCaller: [String: [Int]] = [:]
        for caller in Set(rules.compactMap(\.callers).joined()) {
            byCaller[caller] = rules.indices.filter { rules[$0].callers?.contains(caller) ?? true }
        }
        self.byCaller = byCaller
        wildcard = rules.indices.filter { rules[$0].callers == nil }
    }

    /// Whether rules name routes: then they need HTTP requests to be judged (a TCP service cannot apply them).
    var namesRoutes: Bool { rules.contains { !$0.routes.isEmpty } }

    /// The decision for one request from `caller` (the service of the verified peer identity; nil when the
    /// identity is not a workload's) to `path` (canonical, see `RequestPath`).
    func decide(caller: String?, method: String, path: Substring, header: (String) -> String? = { _ in nil })
        -> Decision
    {
        if let caller {
            for index in byCaller[caller] ?? wildcard
            where rules[index].covers(method: method, path: path, header: header) {
                return .allow
            }
        }
        let covered = rules.contains { $0.covers(method: method, path: path, header: header) }
        let who = caller.map { "service \($0)" } ?? "a caller without a workload identity"
        if covered { return .deny("\(who) is not allowed to call \(method) \(path)") }
        if defaultAction == .deny {
            return .deny("no rule allows \(who) to call \(method) \(path) (default: deny)")
        }
        return .allow
    }

    /// The decision for a TCP connection: only rules without routes apply.
    func decideConnection(caller: String?) -> Decision {
        var covered = false
        for rule in rules where rule.routes.isEmpty {
            if rule.allows(caller) { return .allow }
            covered = true
        }
        let who = caller.map { "service \($0)" } ?? "a caller without a workload identity"
        if covered || defaultAction == .deny { return .deny("no rule allows \(who) to connect") }
        return .allow
    }
}
