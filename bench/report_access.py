"""The [7/13] section of BENCHMARKS.md, appended by run.sh after report_resilience.py: what authorization (20
rules) and rate limits (never triggering) cost, the `meshwork-access` pair against `meshwork-bare` in the same run."""
import json
import os
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
TICK = os.sysconf("SC_CLK_TCK")


def w(line=""):
    print(line)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


w("## [7/13] What authorization and rate limits cost")
w()
w("The `meshwork-access` pair's callee runs `bench/policy-access.yaml`: an AuthorizationPolicy of 20 rules, all "
  "naming the load's caller, whose only match for its `GET /` is the last (each request walks all 20 rules' routes), "
  "and a total and a per-identity rate limit that never trigger. Its caller runs `bench/policy-bare.yaml`, like `meshwork bare`'s, so the pairs differ only in that "
  "file. Target: at most 5 % of req/s.")
w()
ab = [r for r in rows if r["kind"] == "access-ab"]
w("Req/s, alternating 4 s wrk rounds (on these 2 shared cores an A/A run of two identical pairs moves by several "
  "per cent, so this alone cannot resolve 5 %):")
w()
w("| load | rounds (access / bare) | median | non-2xx |")
w("|---|---|---:|---|")
for r in ab:
    w(f"| wrk, {r['conns']} conns | {', '.join(f'{x:.3f}' for x in r['ratios'])} | {median(r['ratios']):.3f} | "
      f"{r['errors_on'].strip() or 'none'} |")
if not ab:
    w("| (not measured: no Meshwork pairs in this run) | | | |")
w()
for r in [r for r in rows if r["kind"] == "access-cpu"]:
    n = r["requests"]
    on = [t / TICK / n * 1e6 for t in r["on_ticks"]]
    bare = [t / TICK / n * 1e6 for t in r["bare_ticks"]]
    w(f"The callee's CPU per request over {n:,} requests (h2load --h1, 16 connections), alternating rounds: access "
      f"{', '.join(f'{x:.1f}' for x in on)} µs; bare {', '.join(f'{x:.1f}' for x in bare)} µs; "
      f"median {median(on):.1f} vs {median(bare):.1f} µs = **{median(on) / median(bare):.3f}** "
      f"({'met' if median(on) / median(bare) <= 1.05 else '**not met**'} as a CPU cost of at most 5 %; all rounds "
      f"together {sum(r['on_ticks']) / max(sum(r['bare_ticks']), 1):.3f}). "
      f"Requests that succeeded: {', '.join(str(x) for x in r['on_ok'])} (access).")
    w()
alloc = {r["target"]: r for r in rows if r["kind"] == "alloc"}
if "meshwork-access" in alloc and "meshwork" in alloc:
    a, b = alloc["meshwork-access"].get("server"), alloc["meshwork"].get("server")
    if a and b:
        w(f"Allocations per request in the callee (heaptrack): **{a['per_request']} with the access policy vs "
          f"{b['per_request']}** without (the `meshwork` pair's callee in the same run).")
        w()
