import Prometheus

/// The control plane's Prometheus metrics (README, "Control plane metrics"). Every label set is fixed and made
/// up front: connected sidecars, policy pushes, their acknowledgement and convergence times, NACKs, certificates
/// issued and refused by reason, admission-gate waits, and the policy store's latency per operation.
final class ControlPlaneMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let connectedSidecars: Gauge
    let registeredInstances: Gauge
    let policyVersion: Gauge
    let pushes: Counter
    let nacks: Counter
    /// A version sent on a stream until that sidecar acknowledged (or refused) it.
    let ackSeconds: DurationHistogram
    /// A version's first push until every connected sidecar had applied or refused it.
    let convergenceSeconds: DurationHistogram
    let issued: [String: Counter]
    let refused: [EnrolmentRefusal.Reason: Counter]
    let admissionWaits: Counter
    let admissionWaitSeconds: DurationHistogram
    let storeSeconds: [StoreOperation: DurationHistogram]
    let storeErrors: [StoreOperation: Counter]

    enum StoreOperation: String, CaseIterable, Sendable {
        case latest, record, history, append
    }

    static let buckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30),
    ]

    init() {
        let r = registry
        connectedSidecars = r.makeGauge(
            name: "mesh_control_connected_sidecars", help: "Sidecars with a policy stream open to this control plane")
        registeredInstances = r.makeGauge(
            name: "mesh_control_registered_instances", help: "Service instances registered in discovery (leased)")
        policyVersion = r.makeGauge(name: "mesh_control_policy_version", help: "The latest stored policy version")
        pushes = r.makeCounter(name: "mesh_control_policy_pushes_total", help: "Policy versions sent to sidecars")
        nacks = r.makeCounter(
            name: "mesh_control_policy_nacks_total", help: "Policy versions a sidecar refused to apply (NACK)")
        ackSeconds = r.makeDurationHistogram(
            name: "mesh_control_policy_ack_seconds", labels: [], buckets: Self.buckets,
            help: "From sending a policy version on a stream to that sidecar's ACK or NACK")
        convergenceSeconds = r.makeDurationHistogram(
            name: "mesh_control_policy_convergence_seconds", labels: [], buckets: Self.buckets,
            help: "From a policy version's first push until every connected sidecar applied or refused it")
        issued = Dictionary(
            uniqueKeysWithValues: ["join_token", "renewal"].map { via in
                (
                    via,
                    r.makeCounter(
                        name: "mesh_control_certificates_issued_total", labels: [("via", via)],
                        help: "Workload certificates issued, by how they were asked for")
                )
            })
        refused = Dictionary(
            uniqueKeysWithValues: EnrolmentRefusal.Reason.allCases.map { reason in
                (
                    reason,
                    r.makeCounter(
                        name: "mesh_control_certificates_refused_total", labels: [("reason", reason.rawValue)],
                        help: "Certificate requests refused, by reason")
                )
            })
        admissionWaits = r.makeCounter(
            name: "mesh_control_admission_waits_total",
            help: "Sidecar streams that waited at the admission gate (reconnect storms are let in at a set rate)")
        admissionWaitSeconds = r.makeDurationHistogram(
            name: "mesh_control_admission_wait_seconds", labels: [], buckets: Self.buckets,
            help: "How long a stream that waited at the admission gate waited")
        storeSeconds = Dictionary(
            uniqueKeysWithValues: StoreOperation.allCases.map { op in
                (
                    op,
                    r.makeDurationHistogram(
                        name: "mesh_control_store_operation_seconds", labels: [("operation", op.rawValue)],
                        buckets: Self.buckets, help: "Policy store latency, by operation")
                )
            })
        storeErrors = Dictionary(
            uniqueKeysWithValues: StoreOperation.allCases.map { op in
                (
                    op,
                    r.makeCounter(
                        name: "mesh_control_store_errors_total", labels: [("operation", op.rawValue)],
                        help: "Policy store operations that failed, by operation")
                )
            })
    }

    func render() -> [UInt8] { registry.emitToBuffer() }
}
