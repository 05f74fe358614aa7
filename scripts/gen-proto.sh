#!/usr/bin/env bash
# Regenerates Sources/MeshAPI/Generated from Protos/. Run via `make protos`; the output is committed,
# so neither CI nor `make test` needs protoc. The plugins are built from the mirrored Swift packages in
# their own scratch folder (.build-protoc), never with SwiftPM's build plugins (they compile C++ protoc).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
swift build -c release --scratch-path .build-protoc --product protoc-gen-swift
swift build -c release --scratch-path .build-protoc --product protoc-gen-grpc-swift-2
bin=$(swift build -c release --scratch-path .build-protoc --show-bin-path)
out=Sources/MeshAPI
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protoc -I Protos -I /usr/include \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out="$out" \
  --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
  --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" --grpc-swift-2_out="$out" \
  --grpc-swift-2_opt=Visibility=Public --grpc-swift-2_opt=FileNaming=PathToUnderscores \
  Protos/meshwork/v1/*.proto
echo "generated: $(ls "$out" | tr '\n' ' ')"
