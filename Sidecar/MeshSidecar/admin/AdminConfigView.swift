import Foundation
import MeshCore
import MeshTelemetry

/// `/config`: what this sidecar is running with — its service, mode, trust domain, bound listeners, and
/// the endpoint sets it holds with their discovery revisions, its instance labels, the policy version it runs and
/// who may call it — as JSON.
enum AdminConfigView {
    static func json(
        _ config: SidecarConfiguration, cache: EndpointCache, policy: SidecarPolicy.Current, bound: [String: String],
        inbound: InboundPolicy? = nil
    ) -> String {
        let q = JSONLogHandler.quote
        let mode: String
        switch config.mode {
        case .controlPlane(let control, _, _): mode = "{\"kind\":\"control-plane\",\"control\":\(q("\(control)"))}"
        case .standalone(let paths, _):
            mode =
                "{\"kind\":\"standalone\",\"cert\":\(q(paths.cert)),\"key\":\(q(paths.key)),\"bundle\":\(q(paths.bundle))}"
        }
        let listeners = bound.keys.sorted().map { "\(q($0)):\(q(bound[$0]!))" }.joined(separator: ",")
        let now = Date()
        let destinations = cache.held().map { held in
            let snapshot = held.snapshot
            let endpoints = snapshot.endpoints.map { q("\($0.address)") }.joined(separator: ",")
            // How old the set is, and whether it was read back from disk (the control plane has not answered
            // since the restart): static stability made visible.
            let age = held.received.map { String(Int(now.timeIntervalSince($0).rounded(.down))) } ?? "null"
            let source = held.fromDisk ? "disk" : "control-plane"
            return
                "\(q(snapshot.service.value)):{\"known\":\(snapshot.known),\"revision\":\(snapshot.revision),\"endpoints\":[\(endpoints)],\"age_seconds\":\(age),\"source\":\(q(source))}"
        }.joined(separator: ",")
        let policyDocuments = policy.documents.map { q("\($0.key)") }.joined(separator: ",")
        let labels = config.labels.keys.sorted().map { "\(q($0)):\(q(config.labels[$0]!))" }.joined(separator: ",")
        let access: String =
            switch inbound?.access {
            case nil, .open?: "open"
            case .authorized(let a)?: "authorized (\(a.mode.rawValue), default \(a.defaultAction.rawValue))"
            case .unavailable?: "refused: policy unavailable"
            }
        return """
            {"service":\(q(config.service.value)),"trust_domain":\(q(config.trustDomain.name)),"mode":\(mode),\
            "app":\(q("\(config.app)")),"listeners":{\(listeners)},"destinations":{\(destinations)},\
            "labels":{\(labels)},"policy":{"version":\(policy.version),"documents":[\(policyDocuments)]},\
            "inbound":{"access":\(q(access)),"rate_limited":\(inbound?.rateLimits != nil)},\
            "log_level":\(q(MeshLogging.level.rawValue))}

            """
    }
}
