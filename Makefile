# Meshwork: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
# System packages the build, demo and tests need (Debian names). Installed only if missing.
APT_PACKAGES := curl iproute2 openssl python3 python3-grpcio python3-websockets python3-jsonschema python3-yaml nghttp2-client redis-server redis-tools libsystemd-dev prometheus python3-pip
# Python packages from PyPI the tests need (the OTLP receiver), kept inside the build folder.
PY_TARGET := .build/python

.PHONY: deps build release demo test bench lint protos clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@[ -d $(PY_TARGET)/opentelemetry/proto ] || /usr/bin/python3 -m pip install --quiet --disable-pip-version-check \
	  --root-user-action=ignore --break-system-packages --target $(PY_TARGET) opentelemetry-proto

build: deps
	swift build

# The binaries to ship: optimised, the Swift runtime and Foundation linked in (no Swift toolchain needed on the
# hosts; also measurably cheaper per request than the shared runtime, see BENCHMARKS.md). Into .build/ship/release.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -cross-module-optimization --build-path .build/ship
release: deps
	swift build $(RELEASE_FLAGS)
	@echo "binaries: $$(swift build $(RELEASE_FLAGS) --show-bin-path)"

demo: build
	./demo/run.sh

test: build lint
	swift test --no-parallel

# Meshwork vs Envoy vs direct, one run, release build; writes BENCHMARKS.md (not part of `make test`).
bench: release
	./bench/run.sh

# Layout is the formatter's (.swift-format); generated code in Sources/MeshAPI is exempt.
lint:
	swift format lint --strict $$(git ls-files '*.swift' | grep -v '^Sources/MeshAPI/')

# Regenerate Sources/MeshAPI from Protos/ (output is committed; needs protoc, installed if missing).
protos:
	./scripts/gen-proto.sh

clean:
	rm -rf .build .build-protoc
