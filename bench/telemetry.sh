# What telemetry costs ([8/13]), sourced by run.sh after access.sh (its helpers and the meshwork-bare pair):
# an OTLP/HTTP receiver (Tests/IntegrationTests/Fixtures/otlp_receiver.py --discard: answers every export 200
# without decoding it, so its own CPU stays small) and two pairs exporting to it, against meshwork-bare:
#   meshwork-traced   --trace-sampling 100% and --access-log on in both sidecars (every request: three spans, two
#                     access lines, written to the pair's log files);
#   meshwork-sampled  the defaults with an exporter: --trace-sampling 1%, no access log.
# Measured: req/s in alternating 4 s wrk rounds at 16 and 64 connections, and the CPU of both sidecars of the
# pair over a fixed 20,000 requests (h2load --h1), alternating, against meshwork-bare's two.
TELEMETRY_ROUNDS=${BENCH_TELEMETRY_ROUNDS:-5}
if [ "$SKIP_MESHWORK" != 1 ]; then
  echo "== telemetry cost: spans to a live OTLP receiver and access logs, A/B against meshwork-bare"
  [ -d .build/python/opentelemetry/proto ] || { echo "bench: run make deps first (opentelemetry-proto)" >&2; exit 1; }
  PYTHONPATH=.build/python /usr/bin/python3 Tests/IntegrationTests/Fixtures/otlp_receiver.py --discard 0 \
    >"$RUN/otlp.log" 2>&1 & OTLP=$!; PIDS+=($OTLP)
  for _ in $(seq 1 100); do grep -q listening "$RUN/otlp.log" 2>/dev/null && break; sleep 0.1; done
  OTLP_URL="127.0.0.1:$(grep -o '[0-9]*$' "$RUN/otlp.log" | head -1)"
  BARE_PROCS="${SRV[meshwork-bare]} ${CLI[meshwork-bare]}"
  for variant in traced sampled; do
    if [ $variant = traced ]; then flags="--otlp-endpoint http://$OTLP_URL --trace-sampling 100% --access-log on"
    else flags="--otlp-endpoint http://$OTLP_URL"; fi
    admin=$(port)
    PAIR_APP="" PAIR_FLAGS="$flags" PAIR_CLI_ADMIN=$admin start_meshwork meshwork-$variant bench/policy-bare.yaml
    URL=$PAIR_URL; PROCS="$PAIR_SRV $PAIR_CLI"
    curl -sf --max-time 5 "http://$URL/" >/dev/null || { echo "meshwork-$variant does not answer" >&2; tail "$RUN"/meshwork-$variant-*.log >&2; exit 1; }
    for c in 16 64; do
      ratios=(); errs=""
      for _ in $(seq 1 $TELEMETRY_ROUNDS); do
        out=$(wrk -t 2 -c $c -d 4s "http://$URL/"); on=$(echo "$out" | awk '/Requests\/sec/{print $2}')
        errs+=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
        bare=$(wrk -t 2 -c $c -d 4s "http://${TARGET[meshwork-bare]}/" | awk '/Requests\/sec/{print $2}')
        ratios+=("$(awk -v a="${on:-0}" -v b="${bare:-0}" 'BEGIN{printf "%.4f", (b > 0 ? a / b : 0)}')")
      done
      emit "{\"kind\":\"telemetry-ab\",\"variant\":\"$variant\",\"conns\":$c,\"ratios\":[$(IFS=,; echo "${ratios[*]}")],\"errors_on\":\"$errs\"}"
    done
    on_ticks=(); bare_ticks=()
    for _ in $(seq 1 3); do
      b=$(cpu $PROCS); fixed $URL 20000 >/dev/null; a=$(cpu $PROCS); on_ticks+=($((a - b)))
      b=$(cpu $BARE_PROCS); fixed ${TARGET[meshwork-bare]} 20000 >/dev/null; a=$(cpu $BARE_PROCS); bare_ticks+=($((a - b)))
    done
    exports=$(curl -s --max-time 5 "http://$OTLP_URL/_spans" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"]["accepted"])' 2>/dev/null || echo 0)
    dropped=$(curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" | awk '/^mesh_trace_spans_dropped_total/{print $2}')
    emit "{\"kind\":\"telemetry-cpu\",\"variant\":\"$variant\",\"requests\":20000,\"on_ticks\":[$(IFS=,; echo "${on_ticks[*]}")],\"bare_ticks\":[$(IFS=,; echo "${bare_ticks[*]}")],\"exports_accepted\":${exports:-0},\"caller_dropped\":${dropped:-null}}"
    kill $PAIR_SRV $PAIR_CLI 2>/dev/null || true; wait $PAIR_SRV $PAIR_CLI 2>/dev/null || true; forget $PAIR_SRV $PAIR_CLI
  done
  kill -9 $OTLP 2>/dev/null || true; wait $OTLP 2>/dev/null || true; forget $OTLP
fi
