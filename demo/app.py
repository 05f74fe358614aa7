#!/usr/bin/env python3
"""Demo services for `make demo` and the integration tests.

  app.py orders   PORT   answers GET /orders with JSON naming the caller the mesh verified;
                         PUT/POST /sink reads a body of any size in 1 MiB chunks and reports its length;
                         GET /source?bytes=N sends N bytes (streaming tests);
                         GET /slow?ms=N answers after N milliseconds (drain tests)
  app.py frontend PORT   answers GET / by calling http://orders/orders through $http_proxy (its sidecar)
"""
import json
import os
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so sidecar connection reuse is exercised
    wbufsize = 65536  # one write per response (head + body), else Nagle + delayed ACK add ~40 ms

    def do_PUT(self):
        if self.path != "/sink":
            return self.reply(404, {"error": "only /sink takes a body"})
        remaining, received = int(self.headers.get("content-length", "0")), 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            received += len(chunk)
            remaining -= len(chunk)
        self.reply(200, {"received": received})

    do_POST = do_PUT

    def do_GET(self):
        role = self.server.role
        if self.path == "/healthz":
            return self.reply(200, {"status": "ok"})
        if self.path.startswith("/status?code="):
            return self.reply(int(self.path.split("=", 1)[1]), {"status": self.path.split("=", 1)[1]})
        if self.path.startswith("/slow?ms="):
            time.sleep(int(self.path.split("=", 1)[1]) / 1000)
            return self.reply(200, {"slept_ms": int(self.path.split("=", 1)[1])})
        if self.path.startswith("/source?bytes="):
            total = int(self.path.split("=", 1)[1])
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(total))
            self.end_headers()
            block = b"\0" * (1 << 20)
            while total > 0:
                n = min(total, len(block))
                self.wfile.write(block[:n])
                total -= n
            return
        if role == "orders":
            body = {
                "service": "orders",
                "path": self.path,
                "caller": self.headers.get("x-mesh-peer-identity", "(none: not through the mesh)"),
                "orders": [{"id": 1, "item": "coffee"}, {"id": 2, "item": "tea"}],
            }
            self.reply(200, body)
        else:
            try:
                with urllib.request.urlopen("http://orders/orders", timeout=5) as resp:
                    upstream = json.loads(resp.read())
                    body = {
                        "service": "frontend",
                        "orders_status": resp.status,
                        "orders_identity": resp.headers.get("x-mesh-upstream-identity"),
                        "orders_saw_caller": upstream.get("caller"),
                        "orders": upstream.get("orders"),
                    }
                    self.reply(200, body)
            except urllib.error.HTTPError as e:
                self.reply(502, {"service": "frontend", "error": e.headers.get("x-mesh-error"), "status": e.code})

    def reply(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


def main():
    role, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.role = role
    print(f"{role} app listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
