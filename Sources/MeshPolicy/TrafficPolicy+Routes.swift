import MeshCore
import Yams

extension TrafficPolicy {
    /// A route: requests that `match` (methods, paths, headers) go to `subset` instead of the weighted split, and
    /// get `fault` if one is set. The first route that matches wins, as in Istio's VirtualService and the
    /// Gateway API's HTTPRoute; a request no route matches takes the split (or every endpoint).
    public struct Route: Sendable, Equatable, Codable {
        public var name: String?
        public var match: RouteMatch?
        /// Only instances of this subset serve the route (none live: `no_endpoints`, no fallback).
        public var subset: String?
        public var fault: Fault?

        public init(name: String? = nil, match: RouteMatch? = nil, subset: String? = nil, fault: Fault? = nil) {
            self.name = name
            self.match = match
            self.subset = subset
            self.fault = fault
        }
    }

    /// Faults the caller's sidecar injects for testing how callers cope: off unless a route says so.
    public struct Fault: Sendable, Equatable, Codable {
        public var delay: Delay?
        public var abort: Abort?

        public struct Delay: Sendable, Equatable, Codable {
            /// How long the request waits before it is routed (counted in its `timeouts.request`).
            public var fixed: String
            public var percent: Double
        }

        /// Answered by the sidecar itself with `x-mesh-error: fault_injected`; the app never sees the request.
        public struct Abort: Sendable, Equatable, Codable {
            /// For HTTP callers; default 503 when only `grpcStatus` is given.
            public var httpStatus: Int?
            /// For gRPC callers (a code 1...16); default: the gRPC code for `httpStatus`.
            public var grpcStatus: Int?
            public var percent: Double
        }
    }

    static func readRoutes(
        _ node: Node, service: ServiceName, references: inout [PolicyReference], _ r: inout NodeReader
    ) -> [Route]? {
        guard let items = r.list(node, "spec.routes") else { return nil }
        var routes: [Route] = []
        var names: Set<String> = []
        for (index, item) in items.enumerated() {
            let path = "spec.routes[\(index)]"
            guard let fields = r.mapping(item, path, allowed: ["name", "match", "subset", "fault"]) else { continue }
            var route = Route()
            if let n = fields["name"], let name = r.string(n, "\(path).name") {
                if !names.insert(name).inserted { r.issue(n, "\(path).name", "route \"\(name)\" is defined twice") }
                route.name = name
            }
            if let m = fields["match"] { route.match = RouteMatch.read(m, "\(path).match", &r) }
            if let s = fields["subset"], let subset = r.string(s, "\(path).subset") {
                route.subset = subset
                references.append(PolicyReference(service: service, subset: subset, at: s, "\(path).subset", r.file))
            }
            if let f = fields["fault"] { route.fault = readFault(f, "\(path).fault", &r) }
            if route.subset == nil, route.fault == nil {
                r.issue(item, path, "does nothing: give it a subset, a fault or both")
            }
            routes.append(route)
        }
        return routes
    }

    private static func readFault(_ node: Node, _ path: String, _ r: inout NodeReader) -> Fault? {
        guard let fields = r.mapping(node, path, allowed: ["delay", "abort"]) else { return nil }
        var fault = Fault()
        if let d = fields["delay"], let delay = r.mapping(d, "\(path).delay", allowed: ["fixed", "percent"]),
            let fixedNode = r.required(delay, "fixed", in: d, "\(path).delay"),
            let fixed = r.duration(fixedNode, "\(path).delay.fixed", in: .milliseconds(1) ... .seconds(3600)),
            let percent = r.required(delay, "percent", in: d, "\(path).delay").flatMap({
                r.percent($0, "\(path).delay.percent")
            })
        {
            fault.delay = Fault.Delay(fixed: DurationText.format(fixed), percent: percent)
        }
        if let a = fields["abort"],
            let abort = r.mapping(a, "\(path).abort", allowed: ["httpStatus", "grpcStatus", "percent"]),
            let percent = r.required(abort, "percent", in: a, "\(path).abort").flatMap({
                r.percent($0, "\(path).abort.percent")
            })
        {
            let http = abort["httpStatus"].flatMap { r.int($0, "\(path).abort.httpStatus", in: 400...599) }
            let grpc = abort["grpcStatus"].flatMap { r.int($0, "\(path).abort.grpcStatus", in: 1...16) }
            if abort["httpStatus"] == nil, abort["grpcStatus"] == nil {
                r.issue(a, "\(path).abort", "needs httpStatus (400...599), grpcStatus (1...16) or both")
            }
            fault.abort = Fault.Abort(httpStatus: http, grpcStatus: grpc, percent: percent)
        }
        if fields["delay"] == nil, fields["abort"] == nil {
            r.issue(node, path, "needs a delay, an abort or both")
        }
        return fault
    }
}

extension NodeReader {
    /// A share of requests, 0 to 100 (decimals allowed: 0.1 is one request in a thousand).
    mutating func percent(_ node: Node, _ path: String) -> Double? {
        guard let value = node.float ?? node.int.map(Double.init), value >= 0, value <= 100 else {
            issue(node, path, "must be a number in 0...100 (got \(node.string ?? "?"))")
            return nil
        }
        return value
    }
}
