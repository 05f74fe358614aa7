#!/usr/bin/env python3
"""A bounded, paced HTTP/1.1 load client: sends a fixed number of requests and reports as one JSON line what came back.

  paced_client.py --url URL [--proxy HOST:PORT] [--rate N] [--count N] [--concurrency N] [--method GET|POST]
                  [--data STRING] [--timeout SECONDS] [--header 'Name: value' ...]

--count requests (default 100) start at --rate per second (default 50; 0: as fast as the workers allow), at most
--concurrency in flight (default 4: one worker thread each, with its own keep-alive connection, reopened after an
error or a "connection: close"). A worker that falls behind the schedule starts its next request at once. There
are no retries. --timeout (default 10 s) is the socket timeout of each request (connect, and each read).
--data is sent as the body (UTF-8), whatever the method. --header may be repeated; a Host header replaces the
URL's.

With --proxy HOST:PORT the requests go to that plain HTTP forward proxy (a sidecar's outbound listener) in absolute
form ("GET http://service/path HTTP/1.1", Host: service); without it, to the URL's host and port (default 80).

Bounded: after count/rate + timeout + 5 seconds (timeout + 5 with --rate 0) it stops waiting, starts nothing more
and reports what has finished; requests still in flight are counted in "unfinished", not in "statuses", and
"gave_up" is true (also when some were never started). Exits 0 after printing, with:

  {"sent": n, "elapsed_s": s, "statuses": {"200": n, "503": n, "0": n}, "errors": {"<x-mesh-error>": n},
   "backends": {"<x-backend>": n}, "transport_errors": {"<exception class>": n},
   "latency_ms": {"p50": x, "p99": x, "max": x}, "unfinished": n, "gave_up": false}

"sent": requests started. Status 0: a transport error or timeout, counted by exception class in
"transport_errors". Empty x-mesh-error and x-backend headers are not counted. Latencies (ms, nearest rank) cover
every finished request, errors included; null when none finished.
"""
import argparse, collections, http.client, json, math, signal, sys, threading, time
from urllib.parse import urlsplit


def parse_args():
    parser = argparse.ArgumentParser(description="bounded, paced HTTP/1.1 load client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--proxy")
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--data")
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    if args.rate < 0 or args.count < 0 or args.concurrency < 1 or args.timeout <= 0:
        parser.error("--rate and --count must be >= 0, --concurrency >= 1, --timeout > 0")
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error(f"--url must be http://HOST[:PORT][/PATH], not {args.url!r}")
    args.headers = {}
    for header in args.header:
        name, colon, value = header.partition(":")
        if not colon or not name.strip():
            parser.error(f"--header must be 'Name: value', not {header!r}")
        args.headers[name.strip()] = value.strip()
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    if args.proxy:
        host, _, port = args.proxy.rpartition(":")
        if not host or not port.isdigit():
            parser.error(f"--proxy must be HOST:PORT, not {args.proxy!r}")
        args.connect_to = (host.strip("[]"), int(port))
        args.target = f"http://{url.netloc}{path}"  # http.client takes the Host header from an absolute target
    else:
        args.connect_to = (url.hostname, url.port or 80)
        args.target = path
    args.body = args.data.encode() if args.data is not None else None
    return args


class Run:
    """The schedule and the results, shared by the workers; guarded by `lock`."""

    def __init__(self, args):
        self.args, self.lock = args, threading.Lock()
        self.start = time.monotonic()
        pacing = args.count / args.rate if args.rate > 0 else 0
        self.deadline = self.start + pacing + args.timeout + 5
        self.next_index, self.sent, self.inflight = 0, 0, 0
        self.results = []  # (status, x-mesh-error, x-backend, transport error, latency ms)

    def take(self):
        """The next request's scheduled start, or None when all are taken or the time is up."""
        with self.lock:
            if self.next_index >= self.args.count:
                return None
            index = self.next_index
            self.next_index += 1
        at = self.start + index / self.args.rate if self.args.rate > 0 else self.start
        if at >= self.deadline:
            return None
        return at

    def worker(self):
        args, conn = self.args, None
        while (at := self.take()) is not None:
            if (wait := at - time.monotonic()) > 0:
                time.sleep(wait)
            with self.lock:
                if time.monotonic() >= self.deadline:
                    return
                self.sent += 1
                self.inflight += 1
            began = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(*args.connect_to, timeout=args.timeout)
                conn.request(args.method, args.target, body=args.body, headers=args.headers)
                response = conn.getresponse()
                response.read()
                result = (response.status, response.getheader("x-mesh-error") or "",
                          response.getheader("x-backend") or "", "")
            except Exception as error:  # transport errors, timeouts, malformed responses: all are status 0
                result = (0, "", "", type(error).__name__)
                if conn is not None:
                    conn.close()
                conn = None
            latency = (time.monotonic() - began) * 1000
            with self.lock:
                self.inflight -= 1
                self.results.append(result + (latency,))

    def report(self, gave_up):
        with self.lock:
            results, sent, inflight = list(self.results), self.sent, self.inflight
        statuses, errors, backends, transport = (collections.Counter() for _ in range(4))
        for status, error, backend, failure, _ in results:
            statuses[str(status)] += 1
            if error:
                errors[error] += 1
            if backend:
                backends[backend] += 1
            if failure:
                transport[failure] += 1
        latencies = sorted(r[4] for r in results)

        def rank(p):  # nearest-rank percentile
            return round(latencies[max(0, math.ceil(p / 100 * len(latencies)) - 1)], 1) if latencies else None

        return {"sent": sent, "elapsed_s": round(time.monotonic() - self.start, 3), "statuses": dict(statuses),
                "errors": dict(errors), "backends": dict(backends), "transport_errors": dict(transport),
                "latency_ms": {"p50": rank(50), "p99": rank(99), "max": rank(100)},
                "unfinished": inflight, "gave_up": gave_up}


def main():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    args = parse_args()
    run = Run(args)
    workers = [threading.Thread(target=run.worker, daemon=True) for _ in range(min(args.concurrency, args.count))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0, run.deadline - time.monotonic()))
    gave_up = any(worker.is_alive() for worker in workers) or run.sent < args.count
    print(json.dumps(run.report(gave_up)), flush=True)
    # Workers still blocked in a read are daemon threads: they do not hold the exit back.


if __name__ == "__main__":
    main()
