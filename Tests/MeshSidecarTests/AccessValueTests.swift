import Foundation
import Logging
import MeshControlClient
import MeshCore
import MeshPolicy
import NIOCore
import NIOHTTP1
import Testing

@testable import MeshSidecar

/// Authorization decisions, rate limits (GCRA with an injected clock), the weighted split and routes, as values.
@Suite struct AuthorizerTests {
    func authorizer(_ yaml: String) throws -> Authorizer {
        let text =
            "apiVersion: meshwork.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec:\n  service: orders\n"
            + yaml.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n") + "\n"
        guard case .authorization(let policy) = try PolicyLoader.load(yaml: text, file: "a.yaml").get()[0].document
        else { throw PolicyFixtures.PolicyFixtureError(yaml: text) }
        return Authorizer(policy.spec)
    }

    @Test func aCallerIsAllowedOnlyOnItsRoutesUnderDefaultDeny() throws {
        let a = try authorizer(
            """
            default: deny
            rules:
              - from: [frontend]
                to: [{methods: [GET], paths: ["/orders/*"]}]
            """)
        #expect(a.decide(caller: "frontend", method: "GET", path: "/orders/7") == .allow)
        #expect(a.decide(caller: "frontend", method: "POST", path: "/orders") != .allow)
        #expect(a.decide(caller: "frontend", method: "GET", path: "/admin") != .allow)
        #expect(a.decide(caller: "billing", method: "GET", path: "/orders/7") != .allow, "an unlisted identity")
        #expect(a.decide(caller: nil, method: "GET", path: "/orders/7") != .allow, "not a workload")
        #expect(a.decideConnection(caller: "frontend") != .allow, "its rules name routes: no whole-connection grant")
    }

    @Test func defaultAllowRestrictsOnlyTheRoutesRulesName() throws {
        let a = try authorizer(
            """
            default: allow
            rules:
              - from: [ops]
                to: [{paths: ["/admin", "/admin/*"]}]
              - from: ["*"]
                to: [{paths: ["/public"], headers: {x-tenant: blue}}]
            """)
        #expect(a.decide(caller: "frontend", method: "GET", path: "/orders") == .allow, "no rule covers it")
        #expect(a.decide(caller: "frontend", method: "GET", path: "/admin/users") != .allow, "restricted to ops")
        #expect(a.decide(caller: "ops", method: "DELETE", path: "/admin") == .allow)
        #expect(
            a.decide(caller: "anyone", method: "GET", path: "/public", header: { $0 == "x-tenant" ? "blue" : nil })
                == .allow)
    }

    @Test func connectionsAreJudgedByCallerOnly() throws {
        let a = try authorizer("rules:\n  - from: [app]\n")
        #expect(a.decideConnection(caller: "app") == .allow)
        #expect(a.decideConnection(caller: "other") != .allow)
        #expect(a.mode == .enforce && a.defaultAction == .deny, "the defaults")
        let audit = try authorizer("mode: audit\nrules: []\n")
        #expect(audit.mode == .audit && audit.decide(caller: "x", method: "GET", path: "/") != .allow)
    }
}

/// A route cannot be reached under another spelling: the path rules judge is canonical.
@Suite struct CanonicalPathTests {
    @Test func spellingsOfOnePathBecomeOne() {
        let cases: [(String, String, String)] = [
            ("/orders/7?x=1", "/orders/7?x=1", "/orders/7"),
            ("//admin", "/admin", "/admin"),
            ("/orders/../admin", "/admin", "/admin"),
            ("/orders/%2e%2e/admin", "/admin", "/admin"),
            ("/%61dmin/./x/", "/admin/x/", "/admin/x/"),
            ("/admin;jsessionid=1", "/admin;jsessionid=1", "/admin"),
            ("/orders;x/../admin", "/admin", "/admin"),
            ("/../../etc", "/etc", "/etc"),
            ("http://orders/admin?q", "/admin?q", "/admin"),
            ("http://orders", "/", "/"),
            ("/a%20b", "/a%20b", "/a%20b"),
            ("/plain/path.json?x=/../", "/plain/path.json?x=/../", "/plain/path.json"),
            ("/.well-known/x", "/.well-known/x", "/.well-known/x"),
            ("/", "/", "/"),
            ("/;x/admin", "/;x/admin", "/admin"),
            ("/a/.", "/a/", "/a/"),
            ("/a/b/..", "/a/", "/a/"),
            ("/public\u{600}/../admin", "/admin", "/admin"),
            ("/a%7e%2a", "/a~%2A", "/a~%2A"),
        ]
        for (uri, target, matched) in cases {
            let canonical = RequestPath.canonical(uri)
            #expect(canonical?.target == target && canonical?.matched == Substring(matched), "\(uri)")
            #expect(canonical?.changed == (target != uri), "\(uri)")
        }
        for refused in [
            "/a%2Fb", "/a%5cb", "/a#frag", "*", "orders/x", "/bad%zz", "/cut%4", "/public/..\\admin", "/admi\tn",
            "/a?b#c", "/a\u{7f}",
        ] {
            #expect(RequestPath.canonical(refused) == nil, "\(refused)")
        }
    }

    @Test func bypassSpellingsAreJudgedAsTheirCanonicalPath() throws {
        let a = try AuthorizerTests().authorizer(
            "default: allow\nrules:\n  - from: [ops]\n    to: [{paths: [/admin, /admin/*]}]\n")
        for uri in ["//admin", "/orders/../admin", "/%61dmin", "/admin;x", "http://orders/admin/users"] {
            let path = try #require(RequestPath.canonical(uri)).matched
            #expect(a.decide(caller: "web", method: "GET", path: path) != .allow, "\(uri)")
        }
        let reads = try AuthorizerTests().authorizer(
            "rules:\n  - from: [\"*\"]\n    to: [{methods: [GET], paths: [/x]}]\n")
        #expect(reads.decide(caller: "web", method: "HEAD", path: "/x") == .allow, "a GET route covers HEAD")
        #expect(reads.decide(caller: nil, method: "GET", path: "/x") != .allow, "* is workloads, not the operator")
    }
}

@Suite struct RateLimitTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func gcraLetsABurstThroughThenTheRate() {
        let limit = GCRA.Limit(perSecond: 10, burst: 3)
        var g = GCRA()
        for _ in 0..<3 {
            #expect(g.wait(limit, at: start) == nil)
            g.take(limit, at: start)
        }
        let wait = g.wait(limit, at: start)
        #expect(wait == .milliseconds(100), "one interval until the next fits")
        #expect(g.wait(limit, at: start + .milliseconds(100)) == nil)
        #expect(g.isIdle(at: start + .milliseconds(300)))
        #expect(GCRA.Limit(perSecond: 50, burst: nil).burst == 50, "default burst: one second's worth")
    }

    func rules(_ yaml: String) throws -> RateLimitRules {
        let policy = try PolicyFixtures.traffic(
            "rateLimit:\n" + yaml.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
        return RateLimitRules(policy.rateLimit!)
    }

    @Test func oneIdentityOverItsLimitLeavesAnotherAlone() throws {
        let r = try rules(
            "perIdentity: {requestsPerSecond: 5, burst: 5}\noverrides:\n  - {from: [ops], requestsPerSecond: 100}")
        let limiter = RateLimiter()
        var admitted = 0
        var last: RateLimiter.Verdict = .admitted
        for _ in 0..<20 {
            last = limiter.admit(caller: "frontend", rules: r, at: start)
            if last == .admitted { admitted += 1 }
        }
        #expect(admitted == 5)
        guard case .limited(let which, let wait) = last else {
            Issue.record("expected limited")
            return
        }
        #expect(which == "identity" && wait == .milliseconds(200))
        #expect(limiter.admit(caller: "billing", rules: r, at: start) == .admitted, "another identity unaffected")
        for _ in 0..<50 { #expect(limiter.admit(caller: "ops", rules: r, at: start) == .admitted, "its override") }
        #expect(limiter.admit(caller: "frontend", rules: r, at: start + .milliseconds(200)) == .admitted)
    }

    @Test func theTotalBindsEveryoneAndANewLimitStartsOver() throws {
        let r = try rules("total: {requestsPerSecond: 4, burst: 4}")
        let limiter = RateLimiter()
        let callers = ["a", "b", "c", "d", "e", "f"]
        let verdicts = callers.map { limiter.admit(caller: $0, rules: r, at: start) }
        #expect(verdicts.filter { $0 == .admitted }.count == 4)
        #expect(verdicts.last.map { if case .limited("total", _) = $0 { true } else { false } } == true)
        let same = try rules("total: {requestsPerSecond: 4, burst: 4}")
        #expect(limiter.admit(caller: "a", rules: same, at: start) != .admitted, "an unchanged limit keeps its counts")
        let raised = try rules("total: {requestsPerSecond: 8, burst: 8}")
        #expect(limiter.admit(caller: "a", rules: raised, at: start) == .admitted, "a changed limit starts over")
    }
}

@Suite struct TrafficRoutesTests {
    func routes(_ spec: String) throws -> TrafficRoutes { try PolicyFixtures.destination(spec, subsets: true).routes }

    static let split = """
        split:
          - {subset: stable, weight: 90}
          - {subset: canary, weight: 10}
        routes:
          - name: canary-header
            match: {headers: {x-canary: "true"}}
            subset: canary
          - match: {paths: ["/drill/*"]}
            fault: {abort: {httpStatus: 429, percent: 50}, delay: {fixed: 20ms, percent: 10}}
        """

    @Test func theSplitFollowsItsWeightsAndMovesADeadSubsetsWeight() throws {
        let r = try routes(Self.split)
        var counts: [String: Int] = [:]
        for i in 0..<2000 { counts[r.pickSplit(roll: Double(i) / 2000, isLive: { _ in true })!.name, default: 0] += 1 }
        #expect(counts == ["stable": 1800, "canary": 200])
        #expect(r.pickSplit(roll: 0.95, isLive: { $0.name != "canary" })?.name == "stable", "canary down: all stable")
        #expect(r.pickSplit(roll: 0.1, isLive: { $0.name == "canary" })?.name == "canary")
        #expect(r.pickSplit(roll: 0.5, isLive: { _ in false }) == nil, "no subset has endpoints")
        #expect(r.split[1].subset.labels == ["track": "canary"], "labels from the Service")
    }

    @Test func theFirstMatchingRouteWinsAndFaultsCompile() throws {
        let r = try routes(Self.split)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/drill/x")
        head.headers.add(name: "x-canary", value: "true")
        #expect(r.route(for: head)?.name == "canary-header")
        head.headers.remove(name: "x-canary")
        let drill = r.route(for: head)
        #expect(drill?.name == "routes[1]")
        #expect(drill?.fault?.abort == InjectedFault.Abort(httpStatus: 429, grpcStatus: 14, chance: 0.5))
        #expect(drill?.fault?.delay == InjectedFault.Delay(duration: .milliseconds(20), chance: 0.1))
        #expect(r.route(for: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/other")) == nil)
        #expect(InjectedFault.grpcStatus(forHTTP: 403) == 7 && InjectedFault.grpcStatus(forHTTP: 500) == 2)
    }

    @Test func aSubsetSelectsByLabels() {
        let canary = SubsetSelector(name: "canary", labels: ["track": "canary"])
        let id = try! SPIFFEID(parsing: "spiffe://mesh.local/svc/orders")
        let a = DiscoveredEndpoint(
            address: HostPort(host: "127.0.0.1", port: 1), identity: id, labels: ["track": "canary", "zone": "a"])
        let b = DiscoveredEndpoint(address: HostPort(host: "127.0.0.1", port: 2), identity: id, labels: [:])
        #expect(canary.contains(a) && !canary.contains(b))
        let balancer = Balancer(service: try! ServiceName("orders"), trustDomain: .default)
        let snapshot = DiscoveredService(
            service: try! ServiceName("orders"), known: true, endpoints: [a, b], revision: 3)
        #expect(balancer.members(of: canary, in: snapshot) == [a])
        for _ in 0..<20 {
            #expect(balancer.pick(snapshot, policy: .defaults, subset: canary, tracked: false).address == a.address)
        }
    }
}

@Suite struct InstanceLabelTests {
    @Test func labelsParseAndTheirTwinIsPlural() throws {
        let base = ["--service", "orders", "--app", "127.0.0.1:8080", "--cert", "c", "--key", "k", "--bundle", "b"]
        let config = try SidecarConfiguration(
            arguments: base + ["--label", "version=v2", "--label", "example.com/zone=a"], environment: [:])
        #expect(config.labels == ["version": "v2", "example.com/zone": "a"])
        let fromEnv = try SidecarConfiguration(arguments: base, environment: ["MESH_LABELS": "track=canary,zone=b"])
        #expect(fromEnv.labels == ["track": "canary", "zone": "b"])
        for bad in ["novalue", "meshwork.dev/protocol=tcp", "bad key=x", "k=v w"] {
            #expect(throws: MeshError.self, "\(bad)") {
                try SidecarConfiguration(arguments: base + ["--label", bad], environment: [:])
            }
        }
        #expect(throws: MeshError.self, "twice") {
            try SidecarConfiguration(arguments: base + ["--label", "a=1", "--label", "a=2"], environment: [:])
        }
    }
}

/// Fail closed: a sidecar that ran an AuthorizationPolicy and cannot load one refuses inbound requests; a TCP
/// sidecar refuses route rules and rate limits it cannot apply.
@Suite struct FailClosedTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("failclosed-\(UUID().uuidString)").path
    let orders = try! ServiceName("orders")

    func documents(_ yaml: String) throws -> [PolicyDocument] {
        try PolicyLoader.load(yaml: yaml, file: "p.yaml").get().map(\.document)
    }

    static let authz =
        "apiVersion: meshwork.dev/v1\nkind: AuthorizationPolicy\nmetadata: {name: a}\nspec:\n  service: orders\n  rules:\n    - from: [frontend]\n      to: [{paths: [/x]}]\n"
    static let service = "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: orders}\nspec: {protocol: tcp}\n"

    @Test func anUnreadablePolicyAfterAuthorizationRefusesUntilOneArrives() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/policy.json"
        let marker = dir + "/" + SidecarPolicy.markerName
        let logger = Logger(label: "t")
        let policy = SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: logger)
        #expect(!policy.unavailable, "a sidecar that never ran authorization starts open")
        #expect(policy.apply(version: 1, try documents(Self.authz)) == nil)
        #expect(FileManager.default.fileExists(atPath: marker))
        try SecureFiles.write(Array("{not json".utf8), to: path)
        let restarted = SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: logger)
        #expect(restarted.unavailable && restarted.current.version == 0)
        try FileManager.default.removeItem(atPath: path)
        #expect(SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: logger).unavailable, "gone too")
        #expect(restarted.apply(version: 2, []) == nil, "a version arrives (here without authorization)")
        let audit = Self.authz.replacingOccurrences(of: "  rules:", with: "  mode: audit\n  rules:")
        #expect(restarted.apply(version: 3, try documents(audit)) == nil)
        #expect(!FileManager.default.fileExists(atPath: marker), "audit mode refuses nothing: no marker")
        #expect(!restarted.unavailable && !FileManager.default.fileExists(atPath: marker))
        try SecureFiles.write(Array("{not json".utf8), to: path)
        #expect(!SidecarPolicy(path: path, service: orders, appProtocol: .http, logger: logger).unavailable)
    }

    @Test func aTCPSidecarRefusesRoutesAndRateLimitsItCannotApply() throws {
        let policy = SidecarPolicy(path: nil, service: orders, appProtocol: .tcp, logger: Logger(label: "t"))
        let routes = policy.apply(version: 1, try documents(Self.service + "---\n" + Self.authz))
        #expect(routes?.contains("spec.rules[0].to names routes") == true, "\(routes ?? "")")
        let limit = policy.apply(
            version: 2,
            try documents(
                Self.service
                    + "---\napiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: t}\nspec:\n  service: orders\n  rateLimit: {total: {requestsPerSecond: 5}}\n"
            ))
        #expect(limit?.contains("spec.rateLimit counts HTTP requests") == true, "\(limit ?? "")")
        let callersOnly = Self.authz.replacingOccurrences(of: "\n      to: [{paths: [/x]}]", with: "")
        #expect(policy.apply(version: 3, try documents(Self.service + "---\n" + callersOnly)) == nil)
    }
}
