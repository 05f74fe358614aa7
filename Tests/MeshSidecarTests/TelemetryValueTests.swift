import Foundation
import MeshCore
import MeshTelemetry
import NIOCore
import Testing

@testable import MeshSidecar

/// Per-peer series (made on first use, dropped when idle, capped), the telemetry flags, TLS failure reasons,
/// journald field names.
struct TelemetryValueTests {
    @Test func peerSeriesAreDroppedAfterTenIdleMinutes() {
        let metrics = SidecarMetrics()
        let start = NIODeadline.now()
        _ = metrics.peers.series(.outbound, "orders", at: start)
        _ = metrics.peers.series(.inbound, "frontend", at: start)
        metrics.peers.error(metrics.peers.series(.outbound, "orders", at: start), cause: "no_endpoints")
        func text() -> String { String(decoding: metrics.render(identityNotAfter: Date()), as: UTF8.self) }
        #expect(text().contains(#"peer_service="orders""#))
        #expect(
            text().contains(
                #"mesh_proxy_errors_total{direction="outbound",peer_service="orders",cause="no_endpoints"} 1"#))
        // frontend is used again at 9 minutes; orders is not.
        _ = metrics.peers.series(.inbound, "frontend", at: start + .minutes(9))
        #expect(metrics.peers.dropIdle(at: start + .minutes(9) + .seconds(59)) == 0)
        // A series with a TCP relay open is kept however long it has been since a new connection.
        let relayed = metrics.peers.series(.inbound, "postgres-client", at: start)
        relayed.relays.add(1, ordering: .relaxed)
        #expect(metrics.peers.dropIdle(at: start + .minutes(10) + .seconds(1)) == 1)
        relayed.relays.subtract(1, ordering: .relaxed)
        #expect(metrics.peers.dropIdle(at: start + .minutes(10) + .seconds(2)) == 1)
        #expect(!text().contains(#"peer_service="orders""#), "\(text())")
        #expect(text().contains(#"peer_service="frontend""#))
        // A peer that comes back starts from zero.
        metrics.peers.error(metrics.peers.series(.outbound, "orders", at: start + .minutes(11)), cause: "no_endpoints")
        #expect(
            text().contains(
                #"mesh_proxy_errors_total{direction="outbound",peer_service="orders",cause="no_endpoints"} 1"#))
    }

    @Test func peersBeyondTheCapCountAsOther() {
        let peers = SidecarMetrics().peers
        for i in 0..<(PeerMetrics.maxPeers + 10) { _ = peers.series(.outbound, "svc-\(i)") }
        #expect(peers.peers == PeerMetrics.maxPeers + 1)
        #expect(peers.series(.outbound, "another").key.peer == "other")
        // Each direction has its own share: a flood of destination names leaves the callers' series alone.
        #expect(peers.series(.inbound, "frontend").key.peer == "frontend")
    }

    @Test func telemetryFlags() throws {
        func parse(_ args: [String], _ env: [String: String] = [:]) throws(MeshError) -> TelemetryConfiguration {
            try SidecarConfiguration(
                arguments: [
                    "--service", "orders", "--app", "127.0.0.1:8080", "--control", "127.0.0.1:7443",
                    "--token-file", "/t", "--data-dir", "/d",
                ] + args, environment: env
            ).telemetry
        }
        let defaults = try parse([])
        #expect(defaults.tracesEndpoint == nil && defaults.traceSampling == 0.01 && defaults.accessLog == 0)
        #expect(defaults.logTarget == "auto")
        #expect(
            try parse(["--otlp-endpoint", "http://127.0.0.1:4318"]).tracesEndpoint == "http://127.0.0.1:4318/v1/traces")
        #expect(
            try parse([], ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"]).tracesEndpoint == "http://c:4318/v1/traces"
        )
        #expect(
            try parse([], ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/x"]).tracesEndpoint == "http://c:4318/x"
        )
        // The flag wins over the OTel variables.
        #expect(
            try parse(["--otlp-endpoint", "http://a:1"], ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:2"]).tracesEndpoint
                == "http://a:1/v1/traces")
        #expect(try parse(["--trace-sampling", "5%"]).traceSampling == 0.05)
        #expect(try parse(["--trace-sampling", "0.25"]).traceSampling == 0.25)
        #expect(try parse(["--access-log", "on"]).accessLog == 1)
        #expect(try parse(["--access-log", "10%"]).accessLog == 0.1)
        #expect(try parse(["--log-target", "journald"]).logTarget == "journald")
        for bad in [
            ["--otlp-endpoint", "127.0.0.1:4318"], ["--trace-sampling", "150%"], ["--trace-sampling", "x"],
            ["--access-log", "-1"], ["--log-target", "syslog"],
        ] {
            #expect(throws: MeshError.self, "\(bad)") { try parse(bad) }
        }
        #expect(throws: MeshError.self) { try parse([], ["OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"]) }
    }

    @Test func tlsFailureReasons() {
        #expect(
            TLSFailure.reason(boringSSL: "error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED")
                == .untrustedCertificate)
        #expect(
            TLSFailure.reason(boringSSL: "SSL routines:OPENSSL_internal:PEER_DID_NOT_RETURN_A_CERTIFICATE")
                == .noCertificate)
        #expect(TLSFailure.reason(boringSSL: "SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER") == .notTLS)
        #expect(TLSFailure.reason(boringSSL: "SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL") == .protocolMismatch)
        #expect(TLSFailure.reason(ChannelError.eof) == .closed)
    }

    @Test func journalFieldNames() {
        #expect(Journal.fieldName("trace_id") == "TRACE_ID")
        #expect(Journal.fieldName("peer") == "MESH_PEER")
        #expect(Journal.fieldName("not-after") == "MESH_NOT_AFTER")
        #expect(Journal.priority("warning") == 4 && Journal.priority("info") == 6)
        #expect(LogTarget.resolve("auto", environment: ["JOURNAL_STREAM": "8:1234"]) == .journald)
        #expect(LogTarget.resolve("auto", environment: [:]) == .stdout)
        #expect(LogTarget.resolve("stdout", environment: ["JOURNAL_STREAM": "8:1234"]) == .stdout)
    }
}
