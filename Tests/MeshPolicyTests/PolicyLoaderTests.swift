import Foundation
import MeshCore
import MeshPolicy
import Testing

@Suite struct PolicyLoaderTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Every file under policies/ validates, and together they form one consistent set (as `meshctl apply -f policies/`).
    @Test func everyFileInPoliciesValidates() throws {
        let dir = Self.root.appendingPathComponent("policies")
        let files = FileManager.default.enumerator(atPath: dir.path)!.compactMap { $0 as? String }.filter {
            $0.hasSuffix(".yaml")
        }.sorted()
        #expect(files.count >= 3)
        var all: [LoadedDocument] = []
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            switch PolicyLoader.load(yaml: text, file: "policies/\(file)") {
            case .success(let documents): all += documents
            case .failure(let errors): Issue.record("policies/\(file) does not validate:\n\(errors)")
            }
        }
        if case .failure(let errors) = PolicySet().applying(all) {
            Issue.record("policies/ is not a consistent set:\n\(errors)")
        }
        #expect(Set(all.map(\.document.key.kind)) == Set(PolicyKind.allCases), "an example of every kind")
    }

    @Test func aValidServiceBecomesATypedPolicy() throws {
        let yaml = """
            apiVersion: meshwork.dev/v1
            kind: Service
            metadata:
              name: orders
            spec:
              protocol: grpc
              ports:
                - port: 9090
              subsets:
                - name: v1
                  labels: {version: v1}
            """
        let loaded = try PolicyLoader.load(yaml: yaml, file: "a.yaml").get()
        guard case .service(let service) = loaded.first?.document else {
            Issue.record("not a service: \(loaded)")
            return
        }
        #expect(service.spec.protocol == .grpc && service.spec.ports.first?.port == 9090)
        #expect(service.spec.subsets == [ServicePolicy.Subset(name: "v1", labels: ["version": "v1"])])
    }

    /// Golden: what a user reads for a document with several mistakes — all of them, with positions.
    @Test func everyProblemIsReportedWithFileLineColumnAndKeyPath() {
        let yaml = """
            apiVersion: meshwork.dev/v2
            kind: Service
            metadata:
              name: Orders
            spec:
              protocol: smtp
              retries: 3
              ports:
                - port: 0
                - name: x
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata:
              name: orders
            spec:
              service: orders
              timeouts: {request: 2s}
              retries: {attempts: 11, perTryTimeout: 5s, budget: {percent: 120}}
              loadBalancing: fastest
              split:
                - {subset: v1, weight: 60}
                - {subset: v1, weight: 30}
            ---
            kind: Gateway
            """
        guard case .failure(let errors) = PolicyLoader.load(yaml: yaml, file: "policies/bad.yaml") else {
            Issue.record("bad policy accepted")
            return
        }
        #expect(
            errors.description == """
                policies/bad.yaml:1:13: apiVersion: must be meshwork.dev/v1 (got "meshwork.dev/v2")
                policies/bad.yaml:4:9: metadata.name: name "Orders" must use only a-z, 0-9 and '-', and start and end with a letter or digit
                policies/bad.yaml:6:13: spec.protocol: must be one of http, http2, grpc, tcp (got "smtp")
                policies/bad.yaml:7:3: spec.retries: unknown field (allowed: protocol, ports, subsets)
                policies/bad.yaml:9:13: spec.ports[0].port: must be an integer in 1...65535 (got 0)
                policies/bad.yaml:10:7: spec.ports[1].port: is required
                policies/bad.yaml:19:23: spec.retries.attempts: must be an integer in 0...10 (got 11)
                policies/bad.yaml:19:42: spec.retries.perTryTimeout: must not exceed spec.timeouts.request
                policies/bad.yaml:19:64: spec.retries.budget.percent: must be an integer in 0...100 (got 120)
                policies/bad.yaml:20:18: spec.loadBalancing: must be one of peak_ewma, least_request, round_robin, random (got "fastest")
                policies/bad.yaml:23:16: spec.split[1].subset: subset "v1" appears twice
                policies/bad.yaml:25:1: apiVersion: is required (meshwork.dev/v1)
                policies/bad.yaml:25:7: kind: unknown kind "Gateway" (known: Service, TrafficPolicy, AuthorizationPolicy)
                """)
    }

    static let services = """
        apiVersion: meshwork.dev/v1
        kind: Service
        metadata: {name: orders}
        spec:
          subsets:
            - {name: v1, labels: {version: v1}}
            - {name: v2, labels: {version: v2}}
        ---
        apiVersion: meshwork.dev/v1
        kind: Service
        metadata: {name: frontend}
        """

    func apply(_ yaml: String, to set: PolicySet = PolicySet(), file: String = "p.yaml") -> Result<
        PolicySet, PolicyErrors
    > {
        PolicyLoader.load(yaml: yaml, file: file).flatMap { set.applying($0) }.map(\.0)
    }

    @Test func referencesToUnknownServicesAndSubsetsAreRefusedWithTheirPosition() throws {
        let policies = """
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: orders-split}
            spec:
              service: orders
              split: [{subset: v1, weight: 90}, {subset: v3, weight: 10}]
            ---
            apiVersion: meshwork.dev/v1
            kind: AuthorizationPolicy
            metadata: {name: payments}
            spec:
              service: payments
              rules: [{from: [frontend, "*", ghost]}]
            """
        guard case .failure(let errors) = apply(Self.services + "\n" + policies) else {
            Issue.record("dangling references accepted")
            return
        }
        #expect(
            errors.description == """
                p.yaml:18:46: spec.split[1].subset: Service orders has no subset "v3" (it defines: v1, v2)
                p.yaml:24:12: spec.service: service "payments" is not defined (apply a Service named payments first or with it)
                p.yaml:25:34: spec.rules[0].from[2]: service "ghost" is not defined (apply a Service named ghost first or with it)
                """)
    }

    @Test func routesFaultsAndRateLimitsAreCheckedWithTheirPositions() throws {
        let bad = """
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: t}
            spec:
              service: orders
              routes:
                - match: {headers: {X-Canary: "true"}}
                  subset: v2
                - match: {paths: [/a]}
                - fault: {abort: {percent: 50}, delay: {fixed: 0ms, percent: 10}}
              rateLimit:
                perIdentity: {requestsPerSecond: 0}
                overrides:
                  - {from: [frontend], requestsPerSecond: 5, burst: -1}
            """
        guard case .failure(let errors) = PolicyLoader.load(yaml: bad, file: "t.yaml") else {
            Issue.record("bad routes accepted")
            return
        }
        #expect(
            errors.description == """
                t.yaml:7:24: spec.routes[0].match.headers: header name "X-Canary" must be lower case, without ":" or spaces
                t.yaml:9:7: spec.routes[1]: does nothing: give it a subset, a fault or both
                t.yaml:10:22: spec.routes[2].fault.abort: needs httpStatus (400...599), grpcStatus (1...16) or both
                t.yaml:10:52: spec.routes[2].fault.delay.fixed: must be between 1ms and 1h (got 0ms)
                t.yaml:12:38: spec.rateLimit.perIdentity.requestsPerSecond: must be an integer in 1...10000000 (got 0)
                t.yaml:14:57: spec.rateLimit.overrides[0].burst: must be an integer in 1...10000000 (got -1)
                """)
        // A route's subset and an override's caller are references like any other.
        let dangling = """
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: orders}
            spec:
              service: orders
              routes: [{match: {paths: [/x]}, subset: v3}]
              rateLimit: {overrides: [{from: [ghost], requestsPerSecond: 1}]}
            """
        guard case .failure(let refs) = apply(Self.services + "\n" + dangling) else {
            Issue.record("dangling route subset accepted")
            return
        }
        #expect(refs.description.contains("spec.routes[0].subset: Service orders has no subset \"v3\""))
        #expect(refs.description.contains("spec.rateLimit.overrides[0].from[0]: service \"ghost\" is not defined"))
    }

    @Test func rulePathsMustBeWrittenAsRequestsAreMatched() {
        for good in ["/orders", "/orders/*", "/a%20b", "/", "/*", "/.well-known/x"] {
            #expect(RouteMatch.isCanonical(good), "\(good)")
        }
        for bad in [
            "/a//b", "/a/./b", "/a/../b", "/a/..", "/x;y", "/a%7e", "/a%7E", "/a%2f", "/a%2F", "/a%20b%2", "/a\\b",
        ] {
            #expect(!RouteMatch.isCanonical(bad), "\(bad)")
        }
        let yaml = """
            apiVersion: meshwork.dev/v1
            kind: AuthorizationPolicy
            metadata: {name: a}
            spec:
              service: orders
              rules: [{from: [web], to: [{paths: ["/admin//x"]}]}]
            """
        guard case .failure(let errors) = PolicyLoader.load(yaml: yaml, file: "a.yaml") else {
            Issue.record("a path that can never match accepted")
            return
        }
        #expect(errors.description.contains("spec.rules[0].to[0].paths: \"/admin//x\" is not a canonical path"))
    }

    @Test func aTCPServiceRefusesWhatItsSidecarsCannotApply() throws {
        let yaml = """
            apiVersion: meshwork.dev/v1
            kind: Service
            metadata: {name: db}
            spec: {protocol: tcp}
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: db}
            spec: {service: db, rateLimit: {total: {requestsPerSecond: 5}}}
            ---
            apiVersion: meshwork.dev/v1
            kind: AuthorizationPolicy
            metadata: {name: db}
            spec:
              service: db
              rules: [{from: ["*"], to: [{paths: [/x]}]}]
            """
        guard case .failure(let errors) = apply(yaml) else {
            Issue.record("route rules for a TCP service accepted")
            return
        }
        #expect(
            errors.description == """
                p.yaml:6:1: spec.rateLimit: TrafficPolicy/db counts requests, but service db is protocol tcp: its sidecars relay bytes and see no requests (remove it)
                p.yaml:11:1: spec.rules[0].to: AuthorizationPolicy/db names routes, but service db is protocol tcp: its sidecars relay bytes and see no requests (authorize TCP callers with rules without `to`)
                """)
        let callersOnly = yaml.replacingOccurrences(of: ", to: [{paths: [/x]}]", with: ", to: [{}]")
            .replacingOccurrences(
                of: ", rateLimit: {total: {requestsPerSecond: 5}}", with: ", routes: [], timeouts: {connect: 2s}")
        #expect((try? apply(callersOnly).get()) != nil, "an empty route list and a to of every route are no routes")
    }

    @Test func aValidSetAppliesAndRoundTripsThroughCanonicalJSON() throws {
        let policies = """
            ---
            apiVersion: meshwork.dev/v1
            kind: TrafficPolicy
            metadata: {name: orders}
            spec:
              service: orders
              timeouts: {request: 1500ms}
              retries: {attempts: 3}
              split: [{subset: v1, weight: 90}, {subset: v2, weight: 10}]
            ---
            apiVersion: meshwork.dev/v1
            kind: AuthorizationPolicy
            metadata: {name: orders}
            spec:
              service: orders
              mode: audit
              rules: [{from: [frontend], to: [{methods: [GET], paths: [/orders/*]}]}]
            """
        let set = try apply(Self.services + "\n" + policies).get()
        #expect(set.documents.count == 4)
        guard case .traffic(let traffic)? = set.documents[PolicyKey(kind: .trafficPolicy, name: "orders")] else {
            Issue.record("no TrafficPolicy")
            return
        }
        #expect(traffic.spec.timeouts?.request == "1500ms")
        #expect(traffic.spec.retries == TrafficPolicy.Retries(attempts: 3, perTryTimeout: nil, budget: .init()))
        #expect(try PolicySet(canonicalJSON: set.canonicalJSON()) == set)
        let json = String(
            decoding: set.documents[PolicyKey(kind: .authorizationPolicy, name: "orders")]!.canonicalJSON(),
            as: UTF8.self)
        #expect(
            json
                == #"{"apiVersion":"meshwork.dev/v1","kind":"AuthorizationPolicy","metadata":{"name":"orders"},"spec":{"default":"deny","mode":"audit","rules":[{"from":["frontend"],"to":[{"methods":["GET"],"paths":["/orders/*"]}]}],"service":"orders"}}"#
        )
    }

    @Test func anApplyCannotBreakWhatIsAlreadyStored() throws {
        let stored = try apply(
            Self.services
                + "\n---\napiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: split}\nspec: {service: orders, split: [{subset: v2, weight: 100}]}\n"
        ).get()
        // Dropping subset v2 from the Service would leave the stored TrafficPolicy pointing at nothing.
        let shrink =
            "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata: {name: orders}\nspec: {subsets: [{name: v1, labels: {version: v1}}]}\n"
        guard case .failure(let errors) = apply(shrink, to: stored, file: "shrink.yaml") else {
            Issue.record("broke a stored policy")
            return
        }
        #expect(
            errors.description
                == #"shrink.yaml:1:1: TrafficPolicy/split (already applied) would break: Service orders has no subset "v2" (it defines: v1)"#
        )
        // Two TrafficPolicies for one service conflict.
        let second =
            "apiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: other}\nspec: {service: orders}\n"
        guard case .failure(let conflict) = apply(second, to: stored) else {
            Issue.record("two TrafficPolicies for one service accepted")
            return
        }
        #expect(
            conflict.description.contains("TrafficPolicy/other and TrafficPolicy/split both apply to service orders"))
        // Deleting the Service others refer to is refused; deleting the policy first is fine.
        #expect(throws: PolicyErrors.self) { try stored.deleting([PolicyKey(kind: .service, name: "orders")]).get() }
        #expect(try stored.deleting([PolicyKey(kind: .trafficPolicy, name: "split")]).get().documents.count == 2)
    }

    @Test func syntaxErrorsCarryTheirPosition() {
        guard case .failure(let errors) = PolicyLoader.load(yaml: "kind: [Service\nmetadata: {", file: "x.yaml") else {
            Issue.record("accepted")
            return
        }
        #expect(
            errors.issues.count == 1 && errors.issues[0].message.hasPrefix("YAML syntax") && errors.issues[0].line >= 1)
    }

    @Test func duplicatesInOneApplyAreRefused() {
        let doc = "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata:\n  name: orders\n"
        guard
            case .failure(let errors) = PolicyLoader.load(yaml: doc + "---\n" + doc, file: "d.yaml").flatMap({
                PolicySet().applying($0)
            })
        else {
            Issue.record("accepted")
            return
        }
        #expect(
            errors.description
                == "d.yaml:6:1: metadata.name: Service/orders is defined twice in this apply (first at d.yaml:1)")
    }
}

@Suite struct OversizedInputTests {
    @Test func aHugeNameIsReportedInOneShortLine() throws {
        let name = String(repeating: "a", count: 1_048_576)
        let yaml = "apiVersion: meshwork.dev/v1\nkind: Service\nmetadata:\n  name: \(name)\nspec: {}\n"
        guard case .failure(let errors) = PolicyLoader.load(yaml: yaml, file: "big.yaml") else {
            Issue.record("a 1 MB name was accepted")
            return
        }
        #expect(errors.description.utf8.count < 300, "\(errors.description.prefix(300))")
        #expect(errors.description.contains("(1048576 bytes)"))
    }

    @Test func aSummaryFitsAnErrorStatusAndCountsTheRest() {
        let issues = (0..<2000).map {
            PolicyIssue(file: "f.yaml", line: $0, column: 1, keyPath: "metadata.name", message: "bad name \($0)")
        }
        let summary = PolicyErrors(issues: issues).summary(maxBytes: 8192)
        #expect(summary.utf8.count <= 8192)
        #expect(summary.hasPrefix("f.yaml:0:1: metadata.name: bad name 0"))
        #expect(summary.contains("more (meshctl validate -f FILES lists them all)"))
    }
}
