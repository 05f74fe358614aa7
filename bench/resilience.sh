# Outage amplification, sourced by run.sh (its helpers and PIDS): every request is answered 503 by a backend that
# counts what reaches it (Tests/IntegrationTests/Fixtures/misbehaving_backend.py, mode fail), behind three caller
# pairs in turn; the same paced load goes through each; the figure is backend requests per request sent.
#   meshwork            two retries of a 503 (bench/policy-outage.yaml) within the default retry budget
#                       (20 % of requests over 10 s plus 10 a second);
#   envoy (default)     Envoy as shipped: a route without retry_policy does not retry at all;
#   envoy (istio)       the route retries Istio installs by default: 2 retries on connect-failure, refused-stream,
#                       unavailable, cancelled and retriable status 503; bounded only by the cluster's max_retries
#                       circuit breaker (3 retries in flight by default), no budget.
# What the resilience policy costs, measured A/B: the `meshwork` pair (bench/policy-resilient.yaml) and
# `meshwork-bare` in alternation, five 4 s rounds each at 16 and 64 connections; the median of the per-round ratios
# (the machine's noise moves both sides of a round together).
if [ "$SKIP_MESHWORK" != 1 ]; then
  echo "== resilience cost, A/B (wrk, 5 alternating rounds of 4 s at 16 and 64 connections)"
  for c in 16 64; do
    ratios=()
    for _ in 1 2 3 4 5; do
      on=$(wrk -t 2 -c $c -d 4s "http://${TARGET[meshwork]}/" | awk '/Requests\/sec/{print $2}')
      bare=$(wrk -t 2 -c $c -d 4s "http://${TARGET[meshwork-bare]}/" | awk '/Requests\/sec/{print $2}')
      ratios+=("$(awk -v a="${on:-0}" -v b="${bare:-0}" 'BEGIN{printf "%.4f", (b > 0 ? a / b : 0)}')")
    done
    emit "{\"kind\":\"resilience-ab\",\"conns\":$c,\"ratios\":[$(IFS=,; echo "${ratios[*]}")]}"
  done
fi

OUTAGE_N=${BENCH_OUTAGE_REQUESTS:-1000}
OUTAGE_RATE=${BENCH_OUTAGE_RATE:-200}
echo "== outage amplification (every request answered 503; $OUTAGE_N requests at $OUTAGE_RATE/s through each caller)"
FAIL=$(port)
python3 Tests/IntegrationTests/Fixtures/misbehaving_backend.py --name down $FAIL >"$RUN/outage-backend.log" 2>&1 & PIDS+=($!)
wait_port $FAIL
ISTIO_RETRIES=', retry_policy: {retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", num_retries: 2, retriable_status_codes: [503]}'
fail_mode() { curl -sf -X POST -d '{}' http://127.0.0.1:$FAIL/_control/reset >/dev/null
  curl -sf -X POST -d '{"mode": "fail"}' http://127.0.0.1:$FAIL/_control/script >/dev/null; }
outage() { # TAG: the paced load through the pair just started (PAIR_*), then the pair is stopped
  curl -s --max-time 5 -o /dev/null "http://$PAIR_URL/" || true   # the path is up (answered 503)
  sleep 1; fail_mode
  local r seen
  r=$(python3 Tests/IntegrationTests/Fixtures/paced_client.py --url "http://$PAIR_URL/" --count $OUTAGE_N \
    --rate $OUTAGE_RATE --concurrency 8 --timeout 10)
  seen=$(curl -sf http://127.0.0.1:$FAIL/_control/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  emit "{\"kind\":\"outage\",\"target\":\"$1\",\"backend_requests\":$seen,\"client\":$r}"
  kill $PAIR_SRV $PAIR_CLI 2>/dev/null || true; wait $PAIR_SRV $PAIR_CLI 2>/dev/null || true; forget $PAIR_SRV $PAIR_CLI
}
PAIR_APP=$FAIL
if [ "$SKIP_MESHWORK" != 1 ]; then start_meshwork outage-meshwork bench/policy-outage.yaml; outage meshwork; fi
start_envoy outage-envoy http_protocol_options http/1.1 81; outage "envoy (default)"
start_envoy outage-envoy-istio http_protocol_options http/1.1 83 "$ISTIO_RETRIES"; outage "envoy (istio retries)"
PAIR_APP=""
