#!/usr/bin/env python3
"""Open-loop HTTP/1.1 load at a fixed rate, latency measured from each request's *scheduled* send time
(so a stalled proxy is charged for the requests it delayed: no coordinated omission).

Usage: openloop.py HOST:PORT PATH RATE SECONDS [CONNECTIONS]
Prints one JSON line: {"rate", "sent", "ok", "errors", "p50_ms", "p99_ms", "max_ms", "achieved_rps"}."""
import asyncio
import json
import sys
import time


async def worker(host, port, request, schedule, latencies, counts):
    reader = writer = None
    while True:
        try:
            slot = next(schedule)
        except StopIteration:
            break
        delay = slot - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - slot)
            counts["ok" if head.startswith(b"HTTP/1.1 200") else "errors"] += 1
        except Exception:
            counts["errors"] += 1
            if writer is not None:
                writer.close()
            reader = writer = None


async def main():
    target, path, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    connections = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    host, port = target.rsplit(":", 1)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    schedule = iter([start + i / rate for i in range(total)])
    latencies, counts = [], {"ok": 0, "errors": 0}
    await asyncio.gather(*(worker(host, int(port), request, schedule, latencies, counts) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else None

    print(json.dumps({"rate": rate, "sent": total, "ok": counts["ok"], "errors": counts["errors"],
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                      "achieved_rps": round(counts["ok"] / elapsed, 1)}))


asyncio.run(main())
