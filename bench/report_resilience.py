"""The [6/13] sections of BENCHMARKS.md, appended by run.sh after report.py: what the resilience layers cost
(the `meshwork` pair with its policy on against `meshwork-bare` in the same run) and the outage amplification
(backend requests per request sent while every request fails, Meshwork's budgeted retries against Envoy's)."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]


def pick(kind, **match):
    return [r for r in rows if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]


def w(line=""):
    print(line)


w("## [6/13] What the resilience layers cost")
w()
w("The `meshwork` pair's caller runs `bench/policy-resilient.yaml` (request and per-try timeouts, two retries of "
  "503 and resets within the default budget, peak-EWMA, outlier detection); `meshwork bare` runs "
  "`bench/policy-bare.yaml` (no retries, not even the safe ones; round robin; no ejection; no request timeout). "
  "Same binaries, same run. Target: the policy on costs at most 5 % of req/s.")
w()
w("| load | meshwork req/s | bare req/s | on / bare | target |")
w("|---|---:|---:|---:|---|")
for c in (1, 16, 64):
    on, bare = pick("closed", target="meshwork", conns=c), pick("closed", target="meshwork-bare", conns=c)
    if on and bare:
        ratio = on[0]["rps"] / bare[0]["rps"]
        w(f"| wrk, {c} conns | {on[0]['rps']:.0f} | {bare[0]['rps']:.0f} | {ratio:.3f} | "
          f"{'met' if ratio >= 0.95 else '**not met**'} |")
on, bare = pick("h2", target="meshwork"), pick("h2", target="meshwork-bare")
if on and bare:
    ratio = on[0]["rps"] / bare[0]["rps"]
    w(f"| h2load, 16 x 10 streams | {on[0]['rps']:.0f} | {bare[0]['rps']:.0f} | {ratio:.3f} | "
      f"{'met' if ratio >= 0.95 else '**not met**'} |")
if not pick("closed", target="meshwork-bare"):
    w("| (not measured: no Meshwork pairs in this run) | | | | |")
w()
w("## [6/13] Outage amplification")
w()
w("Every request answered 503 by the backend (bench/resilience.sh); the same paced load through each caller; "
  "backend requests per request sent. Meshwork retries a 503 twice within its default budget (20 % of requests "
  "over 10 s plus 10 a second); Envoy as shipped does not retry; Istio's default route retries (2 on "
  "connect-failure, refused-stream, unavailable, cancelled, 503) are bounded only by Envoy's max_retries circuit "
  "breaker (3 retries in flight).")
w()
w("| caller | sent | backend requests | per request sent | caller saw | p99 ms |")
w("|---|---:|---:|---:|---|---:|")
for r in pick("outage"):
    c = r["client"]
    sent = c.get("sent", 0)
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(c.get("statuses", {}).items()))
    per = r["backend_requests"] / sent if sent else float("nan")
    p99 = (c.get("latency_ms") or {}).get("p99")
    w(f"| {r['target']} | {sent} | {r['backend_requests']} | {per:.2f} | {statuses} | {p99 if p99 is not None else ''} |")
if not pick("outage"):
    w("| (not measured in this run) | | | | | |")
w()
