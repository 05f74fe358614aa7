# What authorization and rate limits cost ([7/13]), sourced by run.sh after resilience.sh (its helpers, PIDS and
# the meshwork-bare pair): a `meshwork-access` pair whose callee runs bench/policy-access.yaml (20 authorization
# rules, the matching one last; a total and a per-identity rate limit that never trigger) and whose caller runs
# bench/policy-bare.yaml like meshwork-bare's. Measured A/B against meshwork-bare: alternating 4 s wrk rounds at
# 16 and 64 connections, with both pairs' CPU per request; and a check that nothing was refused.
if [ "$SKIP_MESHWORK" != 1 ]; then
  echo "== authorization (20 rules) and rate limits (never triggering) cost, A/B against meshwork-bare"
  PAIR_APP="" SERVER_POLICY=bench/policy-access.yaml start_meshwork meshwork-access bench/policy-bare.yaml
  ACCESS_URL=$PAIR_URL; ACCESS_PROCS="$PAIR_SRV $PAIR_CLI"
  curl -sf --max-time 5 "http://$ACCESS_URL/" >/dev/null || { echo "meshwork-access path does not answer" >&2; tail "$RUN"/meshwork-access-*.log >&2; exit 1; }
  BARE_PROCS="${SRV[meshwork-bare]} ${CLI[meshwork-bare]}"
  for c in 16 64; do
    ratios=(); cpu_on=0; cpu_bare=0; n_on=0; n_bare=0; errs=""
    for _ in 1 2 3 4 5; do
      b=$(cpu $ACCESS_PROCS); out=$(wrk -t 2 -c $c -d 4s "http://$ACCESS_URL/"); a=$(cpu $ACCESS_PROCS)
      on=$(echo "$out" | awk '/Requests\/sec/{print $2}'); cpu_on=$((cpu_on + a - b)); n_on=$((n_on + $(echo "$out" | awk '/requests in/{print $1}')))
      errs+=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
      b=$(cpu $BARE_PROCS); out=$(wrk -t 2 -c $c -d 4s "http://${TARGET[meshwork-bare]}/"); a=$(cpu $BARE_PROCS)
      bare=$(echo "$out" | awk '/Requests\/sec/{print $2}'); cpu_bare=$((cpu_bare + a - b)); n_bare=$((n_bare + $(echo "$out" | awk '/requests in/{print $1}')))
      ratios+=("$(awk -v a="$on" -v b="$bare" 'BEGIN{printf "%.4f", a / b}')")
    done
    emit "{\"kind\":\"access-ab\",\"conns\":$c,\"ratios\":[$(IFS=,; echo "${ratios[*]}")],\"cpu_ticks_on\":$cpu_on,\"requests_on\":$n_on,\"cpu_ticks_bare\":$cpu_bare,\"requests_bare\":$n_bare,\"errors_on\":\"$errs\"}"
  done
  kill $PAIR_SRV $PAIR_CLI 2>/dev/null || true; wait $PAIR_SRV $PAIR_CLI 2>/dev/null || true; forget $PAIR_SRV $PAIR_CLI
fi
