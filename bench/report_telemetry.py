"""The [8/13] section of BENCHMARKS.md, appended by run.sh after report_access.py: what telemetry costs, the
`meshwork-traced` (100 % sampling, access logs on) and `meshwork-sampled` (1 %) pairs against `meshwork-bare`."""
import json
import os
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
TICK = os.sysconf("SC_CLK_TCK")
TARGETS = {"traced": 0.10, "sampled": 0.03}
NAMES = {"traced": "100 % sampling + access logs", "sampled": "1 % sampling (the default)"}


def w(line=""):
    print(line)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


w("## [8/13] What telemetry costs")
w()
w("Both sidecars of each pair export spans over OTLP/HTTP to a live receiver on loopback "
  "(`otlp_receiver.py --discard`: every export answered 200, not decoded). `meshwork-traced` samples every request "
  "(`--trace-sampling 100%`: a client, an attempt and a server span per request) and writes every access line "
  "(`--access-log on`, to the pair's log files); `meshwork-sampled` runs the defaults with an exporter (1 %, no "
  "access log). `meshwork-bare` has no exporter and no access log (trace context is still read and passed on, and "
  "the per-peer metrics counted). Targets: at most 10 % and 3 % of req/s.")
w()
w("| pair | load | rounds (pair / bare) | median | target | non-2xx |")
w("|---|---|---|---:|---|---|")
ab = [r for r in rows if r["kind"] == "telemetry-ab"]
for r in ab:
    m = median(r["ratios"])
    target = TARGETS[r["variant"]]
    verdict = "met" if m >= 1 - target else "**not met**"
    w(f"| {NAMES[r['variant']]} | wrk, {r['conns']} conns | {', '.join(f'{x:.3f}' for x in r['ratios'])} | "
      f"{m:.3f} | ≥ {1 - target:.2f}: {verdict} | {r['errors_on'].strip() or 'none'} |")
if not ab:
    w("| (not measured: no Meshwork pairs in this run) | | | | | |")
w()
for r in [r for r in rows if r["kind"] == "telemetry-cpu"]:
    n = r["requests"]
    on = [t / TICK / n * 1e6 for t in r["on_ticks"]]
    bare = [t / TICK / n * 1e6 for t in r["bare_ticks"]]
    w(f"{NAMES[r['variant']]}: both sidecars' CPU per request over {n:,} requests (h2load --h1, 16 connections), "
      f"alternating: {', '.join(f'{x:.1f}' for x in on)} µs vs bare {', '.join(f'{x:.1f}' for x in bare)} µs; "
      f"median **{median(on) / median(bare):.3f}**. Exports the receiver had accepted by then (both pairs so far): "
      f"{r['exports_accepted']:,}" + (f"; spans the caller's sidecar dropped: {r['caller_dropped']}." if r.get('caller_dropped') is not None else "."))
    w()
