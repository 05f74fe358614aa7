# Sourced by run.sh (its helpers, PIDS and pair starters): allocations and instructions per request.
# Allocations (heaptrack) and instructions (callgrind) per request, on throwaway pairs with the proxies started
# under the tool: two runs each (startup, a 200-request warm-up, then 16 requests on 16 new connections or N+16
# on 16 new connections, then SIGTERM); the difference of the totals over N is per request, startup, warm-up,
# connections and shutdown cancelling out. nginx runs with `master_process off` here (one process per proxy).
# Envoy is left out: its tcmalloc is linked in, out of heaptrack's reach.
stop_wrapped() { # PID started, PID of the program under the tool: SIGTERM, 20 s to finish writing, then SIGKILL
  kill -TERM "$2" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && { echo "   $2 did not stop: killed, its profile is incomplete" >&2; kill -KILL "$2" 2>/dev/null || true; }
  wait "$1" 2>/dev/null || true
}
program_pid() { # PID started, program: the heaptrack script's child running it (valgrind, no wrapper: the same PID)
  local c
  for _ in $(seq 1 100); do
    case $(readlink -f /proc/$1/exe 2>/dev/null) in */bash|*/dash|*/sh) ;; *) echo $1; return ;; esac
    for c in $(ps -o pid= --ppid "$1"); do
      { [ "$(readlink -f /proc/$c/exe 2>/dev/null)" = "$(readlink -f "$2")" ] || tr '\0' '\n' </proc/$c/cmdline 2>/dev/null | head -2 | grep -qxF "$2"; } && { echo $c; return; }
    done
    sleep 0.1
  done
}
heaptrack_calls() { local f; f=$(ls "$1".* 2>/dev/null | head -1) || true
  [ -n "$f" ] && { heaptrack_print -p 0 -a 0 -T 0 -f "$f" 2>/dev/null | awk '/^calls to allocation functions:/{print $5}' || true; }; }
callgrind_ir() { awk '/^(summary|totals):/{print $2; exit}' "$1.out" 2>/dev/null || true; }
profile_pair() { # KIND (meshwork|nginx) TOOL (heaptrack|callgrind) N [LABEL] -> emits one "alloc" or "instructions" line
  local kind=$1 tool=$2 n=$3 label=${4:-$1} bin=$SIDECAR g="" run roles role file w; declare -A total=() okn=()
  [ $kind = nginx ] && { bin=$(command -v nginx); g="master_process off;"; }
  roles="server caller"; [ $tool = callgrind ] && roles="caller"   # callgrind: the caller only (slow)
  for run in base measured; do
    WRAP_SERVER=""; WRAP_CALLER=""
    for role in $roles; do
      file="$RUN/$tool-$label-$run-$role"
      if [ $tool = heaptrack ]; then w="heaptrack -o $file"; else w="valgrind --tool=callgrind --callgrind-out-file=$file.out"; fi
      if [ $role = server ]; then WRAP_SERVER=$w; else WRAP_CALLER=$w; fi
    done
    start_$kind prof-$tool-$label-$run ${g:+"$g"}
    local srv=$PAIR_SRV cli=$PAIR_CLI psrv pcli
    psrv=$(program_pid $srv "$bin"); pcli=$(program_pid $cli "$bin")
    [ -n "$psrv" ] && [ -n "$pcli" ] || { echo "$bin not found under $tool (PIDs $srv $cli)" >&2; exit 1; }
    PIDS+=($psrv $pcli)
    fixed $PAIR_URL 200 >/dev/null
    okn[$run]=$(fixed $PAIR_URL $([ $run = base ] && echo 16 || echo $((n + 16))))
    sleep 0.5
    stop_wrapped $cli $pcli; stop_wrapped $srv $psrv; forget $srv $cli $psrv $pcli
    WRAP_SERVER=""; WRAP_CALLER=""
    for role in $roles; do
      file="$RUN/$tool-$label-$run-$role"
      if [ $tool = heaptrack ]; then total[$run-$role]=$(heaptrack_calls "$file"); else total[$run-$role]=$(callgrind_ir "$file"); fi
    done
  done
  local json="{\"kind\":\"$([ $tool = heaptrack ] && echo alloc || echo instructions)\",\"target\":\"$label\",\"requests\":$n,\"succeeded\":${okn[measured]:-0},\"base_succeeded\":${okn[base]:-0}"
  for role in $roles; do
    local b=${total[base-$role]:-} m=${total[measured-$role]:-}
    # No number rather than a made-up one: the tool wrote nothing, requests failed, or the requests added nothing
    # (the tool did not see the program: e.g. an allocator linked in, or a script that execs another program).
    if [ -z "$b" ] || [ -z "$m" ]; then json+=",\"$role\":null,\"${role}_why\":\"$tool wrote no totals\""
    elif [ "${okn[measured]:-0}" -ne $((n + 16)) ] || [ "${okn[base]:-0}" -ne 16 ]; then json+=",\"$role\":null,\"${role}_why\":\"requests failed\""
    elif [ "$m" -le "$b" ]; then json+=",\"$role\":null,\"${role}_why\":\"$tool saw nothing added by the requests ($b vs $m)\""
    else json+=",\"$role\":{\"base\":$b,\"measured\":$m,\"per_request\":$(awk -v b=$b -v m=$m -v n=$n 'BEGIN{printf "%.1f", (m - b) / n}')}"
    fi
  done
  emit "$json}"
}
PROFILED=(nginx); [ "$SKIP_MESHWORK" != 1 ] && PROFILED=(meshwork nginx)
if command -v heaptrack >/dev/null; then
  echo "== allocations per request (heaptrack, $ALLOC_N requests, difference of two runs)"
  for k in "${PROFILED[@]}"; do profile_pair $k heaptrack $ALLOC_N; done
else
  echo "== allocations per request: heaptrack is not installed, not measured"
  emit "{\"kind\":\"alloc-missing\",\"reason\":\"heaptrack not installed\"}"
fi
if [ "$CALLGRIND" = 1 ]; then
  echo "== instructions per request (callgrind on the caller's proxy, $CALLGRIND_N requests, difference of two runs)"
  for k in "${PROFILED[@]}"; do profile_pair $k callgrind $CALLGRIND_N; done
fi

