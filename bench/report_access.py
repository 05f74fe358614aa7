"""The [7/13] section of BENCHMARKS.md, appended by run.sh after report_resilience.py: what authorization (20
rules) and rate limits (never triggering) cost, the `meshwork-access` pair against `meshwork-bare` in the same run."""
import json
import os
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
TICK = os.sysconf("SC_CLK_TCK")


def w(line=""):
    print(line)


w("## [7/13] What authorization and rate limits cost")
w()
w("The `meshwork-access` pair's callee runs `bench/policy-access.yaml`: an AuthorizationPolicy of 20 rules whose "
  "only match for the load's `GET /` from frontend is the last (each request walks all 20), a total and a "
  "per-identity rate limit that never trigger. Its caller runs `bench/policy-bare.yaml`, like `meshwork bare`'s, "
  "so the pairs differ only in that file. Alternating 4 s wrk rounds; target: at most 5 % of req/s.")
w()
w("| load | rounds (access / bare req/s) | median | target | CPU s / 10k: access | bare | access / bare | non-2xx |")
w("|---|---|---:|---|---:|---:|---:|---|")
ab = [r for r in rows if r["kind"] == "access-ab"]
for r in ab:
    ratios = sorted(r["ratios"])
    median = ratios[len(ratios) // 2]
    on = r["cpu_ticks_on"] / TICK / r["requests_on"] * 10000 if r["requests_on"] else float("nan")
    bare = r["cpu_ticks_bare"] / TICK / r["requests_bare"] * 10000 if r["requests_bare"] else float("nan")
    w(f"| wrk, {r['conns']} conns | {', '.join(f'{x:.3f}' for x in r['ratios'])} | {median:.3f} | "
      f"{'met' if median >= 0.95 else '**not met**'} | {on:.3f} | {bare:.3f} | {on / bare:.3f} | "
      f"{r['errors_on'].strip() or 'none'} |")
if not ab:
    w("| (not measured: no Meshwork pairs in this run) | | | | | | | |")
w()
