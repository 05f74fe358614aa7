#!/usr/bin/env python3
"""Summarises `strace -c -f` outputs, one per proxy of a pair, for a known request count.

Usage: strace_summary.py TARGET REQUESTS ROLE=FILE [ROLE=FILE ...]
Prints one JSON line: {"kind": "syscalls", "target", "requests", "proxies": {ROLE: {"calls", "errors",
"per_request", "top": [[syscall, calls, errors], ...]}}}; a proxy whose file has no total line gets null."""
import json
import sys


def parse(path):
    """strace -c's table: % time, seconds, usecs/call, calls, [errors], syscall; the last row is `total`."""
    rows, total = [], None
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if len(f) < 5 or not f[0].replace(".", "", 1).isdigit():
            continue
        try:
            calls = int(f[3])
        except ValueError:
            continue
        errors = int(f[4]) if len(f) == 6 else 0
        if f[-1] == "total":
            total = (calls, errors)
        else:
            rows.append((f[-1], calls, errors))
    if total is None:
        return None
    rows.sort(key=lambda r: -r[1])
    return total, rows


def main():
    target, requests = sys.argv[1], int(sys.argv[2] or 0)
    proxies = {}
    for spec in sys.argv[3:]:
        role, path = spec.split("=", 1)
        parsed = parse(path)
        if parsed is None or not requests:
            proxies[role] = None
            continue
        (calls, errors), rows = parsed
        proxies[role] = {"calls": calls, "errors": errors, "per_request": round(calls / requests, 2),
                         "top": [[name, c, e] for name, c, e in rows[:6]]}
    print(json.dumps({"kind": "syscalls", "target": target, "requests": requests, "proxies": proxies}))


main()
