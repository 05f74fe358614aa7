// swift-tools-version:6.1
import PackageDescription

// Dependency graph: see README.md ("Layout"). The sidecar and control-plane libraries never import each
// other; they meet only in the wire API (MeshAPI).

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]
let grpc: [Target.Dependency] = [
    .product(name: "GRPCCore", package: "grpc-swift-2"),
    .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
    .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
]

let package = Package(
    name: "Meshwork",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mesh-control", targets: ["mesh-control"]),
        .executable(name: "mesh-sidecar", targets: ["mesh-sidecar"]),
        .executable(name: "meshctl", targets: ["meshctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP/protobuf only: the trait keeps gRPC's exporter (and a second gRPC stack) out.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Domain core: names, addresses, durations. Imports no NIO and no gRPC.
        .target(name: "MeshCore"),
        // Workload identity: SPIFFE IDs in certificates, CSRs, trust bundles, CA pins, join tokens.
        .target(
            name: "MeshIdentity",
            dependencies: [
                "MeshCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // TLS for every hop: secure defaults (TLS 1.3, mTLS) and the SPIFFE verification callbacks.
        .target(
            name: "MeshTLS",
            dependencies: [
                "MeshCore", "MeshIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // Every listener's front door (both binaries): connection cap, handshake and idle timeouts, backlog.
        .target(
            name: "MeshFrontDoor",
            dependencies: [
                "MeshCore", .product(name: "NIOTLS", package: "swift-nio"),
            ] + nio
        ),
        // libsystemd's journal API (sd_journal_send), from apt's libsystemd-dev.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // Logging bootstrap (stdout JSON or journald) and access-log lines shared by every binary.
        .target(name: "MeshTelemetry", dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]),
        // The versioned wire API: generated from Protos/ by scripts/gen-proto.sh, committed.
        .target(
            name: "MeshAPI",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // Policy model: YAML documents in the Kubernetes shape, validated once with file:line:column errors.
        .target(name: "MeshPolicy", dependencies: ["MeshCore", .product(name: "Yams", package: "Yams")]),
        // gRPC client of the control plane, used by the sidecar and meshctl.
        .target(
            name: "MeshControlClient",
            dependencies: [
                "MeshAPI", "MeshIdentity", "MeshTLS", "MeshCore", .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
                + grpc + nio
        ),
        .executableTarget(
            name: "meshctl",
            dependencies: [
                "MeshControlClient", "MeshIdentity", "MeshCore", "MeshTelemetry", "MeshPolicy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "MeshSidecar",
            dependencies: [
                "MeshCore", "MeshIdentity", "MeshTLS", "MeshAPI", "MeshControlClient", "MeshTelemetry", "MeshPolicy",
                "MeshFrontDoor", .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ] + nio,
            path: "Sidecar/MeshSidecar"
        ),
        .executableTarget(name: "mesh-sidecar", dependencies: ["MeshSidecar"], path: "Sidecar/mesh-sidecar"),
        .target(
            name: "MeshControlPlane",
            dependencies: [
                "MeshCore", "MeshIdentity", "MeshTLS", "MeshAPI", "MeshTelemetry", "MeshPolicy", "MeshFrontDoor",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ] + grpc + nio,
            path: "ControlPlane/MeshControlPlane"
        ),
        .executableTarget(name: "mesh-control", dependencies: ["MeshControlPlane"], path: "ControlPlane/mesh-control"),
        // `make bench`: N simulated sidecars (real certificates, real policy streams) against one control plane.
        .executableTarget(
            name: "mesh-loadgen", dependencies: ["MeshControlClient", "MeshIdentity", "MeshCore"], path: "bench/loadgen"
        ),
        // Test PKI: CAs and leaves generated in the test, so no committed certificate can expire.
        .target(
            name: "MeshTestSupport",
            dependencies: [
                "MeshIdentity", "MeshCore", .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/MeshTestSupport"
        ),
        .testTarget(name: "MeshCoreTests", dependencies: ["MeshCore"]),
        .testTarget(name: "MeshPolicyTests", dependencies: ["MeshPolicy", "MeshCore"]),
        .testTarget(
            name: "MeshFrontDoorTests",
            dependencies: [
                "MeshFrontDoor", "MeshCore", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ] + nio
        ),
        .testTarget(
            name: "MeshIdentityTests",
            dependencies: [
                "MeshIdentity", "MeshCore", "MeshTestSupport", .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "MeshTLSTests",
            dependencies: [
                "MeshTLS", "MeshIdentity", "MeshCore", "MeshTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .testTarget(
            name: "MeshSidecarTests",
            dependencies: [
                "MeshSidecar", "MeshIdentity", "MeshCore", "MeshControlClient", "MeshPolicy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "MeshControlPlaneTests",
            dependencies: [
                "MeshControlPlane", "MeshIdentity", "MeshCore", "MeshPolicy", "MeshTestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MeshCore", "MeshIdentity", "MeshAPI", "MeshControlClient",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
            ]),
    ]
)
