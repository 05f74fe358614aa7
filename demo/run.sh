#!/usr/bin/env bash
# `make demo`: a control plane and two services (frontend → orders), each behind a sidecar, on loopback.
# Sends requests through the mesh and shows what happened. Runs until Ctrl-C, or DEMO_SECONDS=N.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(swift build --show-bin-path)
RUN=$(mktemp -d /tmp/meshwork-demo.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped; logs were in $RUN"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

field() { # field FILE KEY: a value from the JSON log lines
  for _ in $(seq 1 100); do
    v=$(grep -o "\"$2\":\"[^\"]*\"" "$1" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
    [ -n "$v" ] && { echo "$v"; return; }
    sleep 0.1
  done
  echo "timed out waiting for $2 in $1" >&2; cat "$1" >&2; exit 1
}
app_port() { for _ in $(seq 1 100); do p=$(grep -o '[0-9]*$' "$1" 2>/dev/null || true); [ -n "$p" ] && { echo "$p"; return; }; sleep 0.1; done; exit 1; }

echo "== starting mesh-control (data in $RUN/control)"
"$BIN/mesh-control" serve --data-dir "$RUN/control" --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$RUN/control.log" 2>&1 & PIDS+=($!)
CONTROL=$(field "$RUN/control.log" address)
CONTROL_ADMIN=$(field "$RUN/control.log" admin)
export MESHCTL_CONFIG="$RUN/control/admin/meshctl.yaml"
echo "   control plane on $CONTROL, CA pin $(field "$RUN/control.log" pin)"

for svc in orders frontend; do
  (umask 077; "$BIN/meshctl" token create --service "$svc" --ttl 10m >"$RUN/$svc.token")
  echo "== join token for $svc: $(cut -c1-30 "$RUN/$svc.token")…"
done

# A trace collector for the demo: an OTLP/HTTP receiver that keeps the spans it gets (opentelemetry-proto from
# PyPI, installed by `make deps` into .build/python).
PYTHONPATH=.build/python python3 Tests/IntegrationTests/Fixtures/otlp_receiver.py 0 >"$RUN/otlp.log" 2>&1 & PIDS+=($!)
OTLP="127.0.0.1:$(app_port "$RUN/otlp.log")"
TELEMETRY=(--otlp-endpoint "http://$OTLP" --access-log on)
echo "== OTLP trace receiver on $OTLP; both sidecars export spans there (1 % of new traces) and log every request"

python3 demo/app.py orders 0 >"$RUN/orders-app.log" 2>&1 & PIDS+=($!)
ORDERS_APP=$(app_port "$RUN/orders-app.log")
"$BIN/mesh-sidecar" --service orders --control "$CONTROL" --token-file "$RUN/orders.token" --app "127.0.0.1:$ORDERS_APP" \
  --data-dir "$RUN/orders" --inbound 127.0.0.1:0 --outbound 127.0.0.1:0 --admin 127.0.0.1:0 \
  --label track=stable "${TELEMETRY[@]}" >"$RUN/orders-sidecar.log" 2>&1 & PIDS+=($!)
ORDERS_IN=$(field "$RUN/orders-sidecar.log" inbound)
echo "== orders app on :$ORDERS_APP, its sidecar (instance label track=stable) accepts mTLS on $ORDERS_IN"

"$BIN/mesh-sidecar" --service frontend --control "$CONTROL" --token-file "$RUN/frontend.token" --app 127.0.0.1:1 \
  --health-check none --data-dir "$RUN/frontend" --inbound 127.0.0.1:0 --outbound 127.0.0.1:0 --admin 127.0.0.1:0 \
  "${TELEMETRY[@]}" >"$RUN/frontend-sidecar.log" 2>&1 & PIDS+=($!)
FRONTEND_OUT=$(field "$RUN/frontend-sidecar.log" outbound)
FRONTEND_ADMIN=$(field "$RUN/frontend-sidecar.log" admin)
http_proxy="http://$FRONTEND_OUT" python3 demo/app.py frontend 0 >"$RUN/frontend-app.log" 2>&1 & PIDS+=($!)
FRONTEND_APP=$(app_port "$RUN/frontend-app.log")
echo "== frontend app on :$FRONTEND_APP uses http_proxy=http://$FRONTEND_OUT (its sidecar)"
for _ in $(seq 1 50); do curl -sf "http://$FRONTEND_ADMIN/ready" >/dev/null && break; sleep 0.1; done
field "$RUN/orders-sidecar.log" endpoint >/dev/null

echo
echo "== frontend app → frontend sidecar → (mTLS) → orders sidecar → orders app"
curl -s "http://127.0.0.1:$FRONTEND_APP/" | python3 -m json.tool
echo
echo "== the same hop by hand: http_proxy=http://$FRONTEND_OUT curl -i http://orders/orders"
http_proxy="http://$FRONTEND_OUT" curl -s -i http://orders/orders
echo
echo "== a service that does not exist: http://payments/"
http_proxy="http://$FRONTEND_OUT" curl -s -i http://payments/ | head -5
echo
echo "== frontend sidecar's certificate (admin /certs)"
curl -s "http://$FRONTEND_ADMIN/certs"
echo
echo "== openssl s_client to the orders sidecar without a client certificate (the sidecar must refuse):"
printf 'GET /orders HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n' \
  | openssl s_client -connect "$ORDERS_IN" -tls1_3 -quiet -CAfile "$RUN/control/ca/root.pem" 2>&1 \
  | grep -iE "alert|HTTP/1" | head -2 || true

echo
echo "== policy: meshctl apply -f policies/ --wait (validated as a whole, stored as one version, pushed to the sidecars)"
"$BIN/meshctl" apply -f policies/ --wait
"$BIN/meshctl" get
printf 'apiVersion: meshwork.dev/v1\nkind: TrafficPolicy\nmetadata: {name: orders}\nspec:\n  service: orders\n  retries: {attempts: 20}\n  split: [{subset: blue, weight: 100}]\n' >"$RUN/bad.yaml"
echo "== a bad change is refused with positions, and nothing is stored:"
"$BIN/meshctl" apply -f "$RUN/bad.yaml" 2>&1 || true
"$BIN/meshctl" history
# The frontend gets orders' TrafficPolicy with the slice for its destinations: wait until it runs it.
for _ in $(seq 1 50); do curl -s "http://$FRONTEND_ADMIN/config" | grep -q 'TrafficPolicy/orders' && break; sleep 0.1; done
echo "== the policy in force (policies/examples): orders' AuthorizationPolicy lets frontend only read orders,"
echo "   its TrafficPolicy splits 90/10 between the stable and canary subsets (no canary instance runs: its weight"
echo "   goes to stable) and sends x-canary: true to the canary (explicit: no endpoints → 503)"
for req in "GET /orders" "POST /orders" "GET /admin" "GET /orders x-canary"; do
  set -- $req
  printf '   %-24s → ' "$req"
  http_proxy="http://$FRONTEND_OUT" curl -s -o /dev/null -X "$1" ${3:+-H "x-canary: true"} \
    -w "%{http_code} %header{x-mesh-error}\n" "http://orders$2"
done

echo
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
echo "== a traced request: the caller sends traceparent 00-$TRACE-00f067aa0ba902b7-01 (sampled)"
http_proxy="http://$FRONTEND_OUT" curl -s -o /dev/null -w "   GET http://orders/orders → %{http_code}\n" \
  -H "traceparent: 00-$TRACE-00f067aa0ba902b7-01" http://orders/orders
sleep 2.5   # spans go out in batches every second
echo "   the spans the collector got for that trace (kind, service, name, span <- parent):"
curl -s "http://$OTLP/_spans" | python3 -c '
import json, sys
kinds = {2: "server", 3: "client"}
for s in json.load(sys.stdin)["spans"]:
    if s["trace_id"] == sys.argv[1]:
        kind, service, name, span, parent = kinds.get(s["kind"], s["kind"]), s["service"], s["name"], s["span_id"], s["parent_span_id"]
        print(f"   {kind:6} {service:8} {name:22} {span} <- {parent}")
' "$TRACE"
echo "   its access-log line in the frontend sidecar's output:"
grep "\"trace_id\":\"$TRACE\"" "$RUN/frontend-sidecar.log" | head -1 | sed 's/^/   /'
echo
echo "== golden metrics per peer (frontend sidecar /metrics, outbound to orders):"
curl -s "http://$FRONTEND_ADMIN/metrics" | grep -E '^mesh_(http_requests|proxy_errors)_total\{direction="outbound",peer_service="orders"' | sed 's/^/   /'
echo "== the control plane's own (admin $CONTROL_ADMIN/metrics):"
curl -s "http://$CONTROL_ADMIN/metrics" | grep -E '^mesh_control_(connected_sidecars|policy_version|policy_pushes_total|certificates_issued_total|policy_convergence_seconds_count)' | sed 's/^/   /'

end=$(( $(date +%s) + ${DEMO_SECONDS:-315360000} ))
echo
echo "== sending a request every 2 s (Ctrl-C to stop${DEMO_SECONDS:+, stopping after ${DEMO_SECONDS}s})"
while [ "$(date +%s)" -lt "$end" ]; do
  printf '%s  ' "$(date +%T)"
  http_proxy="http://$FRONTEND_OUT" curl -s -o /dev/null -w "GET http://orders/orders → %{http_code}, upstream identity %header{x-mesh-upstream-identity}\n" http://orders/orders || echo failed
  sleep 2
done
