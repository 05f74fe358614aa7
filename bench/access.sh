# What authorization and rate limits cost ([7/13]), sourced by run.sh after resilience.sh (its helpers, PIDS,
# profile_pair and the meshwork-bare pair): a `meshwork-access` pair whose callee runs bench/policy-access.yaml
# (20 authorization rules naming the caller, the matching one last, so each request walks all 20; a total and a
# per-identity rate limit that never trigger) and
# whose caller runs bench/policy-bare.yaml like meshwork-bare's. Measured against meshwork-bare three ways:
#   req/s      alternating 4 s wrk rounds at 16 and 64 connections (noisy on shared cores: an A/A run of two
#              identical pairs moves by several per cent);
#   CPU        the callee's CPU ticks over a fixed 20,000 requests (h2load --h1, 16 connections), alternating, five
#              rounds each: where authorization and rate limits run;
#   allocs     the callee's allocations per request (heaptrack, as bench/profile.sh measures the other pairs).
ACCESS_ROUNDS=${BENCH_ACCESS_ROUNDS:-5}
if [ "$SKIP_MESHWORK" != 1 ]; then
  echo "== authorization (20 rules) and rate limits (never triggering) cost, A/B against meshwork-bare"
  PAIR_APP="" SERVER_POLICY=${ACCESS_POLICY-bench/policy-access.yaml} start_meshwork meshwork-access bench/policy-bare.yaml
  ACCESS_URL=$PAIR_URL; ACCESS_SRV=$PAIR_SRV; ACCESS_PROCS="$PAIR_SRV $PAIR_CLI"
  curl -sf --max-time 5 "http://$ACCESS_URL/" >/dev/null || { echo "meshwork-access path does not answer" >&2; tail "$RUN"/meshwork-access-*.log >&2; exit 1; }
  BARE_PROCS="${SRV[meshwork-bare]} ${CLI[meshwork-bare]}"
  for c in 16 64; do
    ratios=(); errs=""
    for _ in $(seq 1 $ACCESS_ROUNDS); do
      out=$(wrk -t 2 -c $c -d 4s "http://$ACCESS_URL/"); on=$(echo "$out" | awk '/Requests\/sec/{print $2}')
      errs+=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
      bare=$(wrk -t 2 -c $c -d 4s "http://${TARGET[meshwork-bare]}/" | awk '/Requests\/sec/{print $2}')
      ratios+=("$(awk -v a="${on:-0}" -v b="${bare:-0}" 'BEGIN{printf "%.4f", (b > 0 ? a / b : 0)}')")
    done
    emit "{\"kind\":\"access-ab\",\"conns\":$c,\"ratios\":[$(IFS=,; echo "${ratios[*]}")],\"errors_on\":\"$errs\"}"
  done
  on_ticks=(); bare_ticks=(); on_ok=(); bare_ok=()
  for _ in $(seq 1 $ACCESS_ROUNDS); do
    b=$(cpu $ACCESS_SRV); on_ok+=($(fixed $ACCESS_URL 20000)); a=$(cpu $ACCESS_SRV); on_ticks+=($((a - b)))
    b=$(cpu ${SRV[meshwork-bare]}); bare_ok+=($(fixed ${TARGET[meshwork-bare]} 20000)); a=$(cpu ${SRV[meshwork-bare]}); bare_ticks+=($((a - b)))
  done
  emit "{\"kind\":\"access-cpu\",\"requests\":20000,\"on_ticks\":[$(IFS=,; echo "${on_ticks[*]}")],\"bare_ticks\":[$(IFS=,; echo "${bare_ticks[*]}")],\"on_ok\":[$(IFS=,; echo "${on_ok[*]}")],\"bare_ok\":[$(IFS=,; echo "${bare_ok[*]}")]}"
  kill $PAIR_SRV $PAIR_CLI 2>/dev/null || true; wait $PAIR_SRV $PAIR_CLI 2>/dev/null || true; forget $PAIR_SRV $PAIR_CLI
  if command -v heaptrack >/dev/null; then
    SERVER_POLICY=bench/policy-access.yaml profile_pair meshwork heaptrack $ALLOC_N meshwork-access
  fi
fi
