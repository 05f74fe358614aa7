#!/usr/bin/env python3
"""An HTTP/1.1 app that calls another service through its own sidecar, for tests of deadline propagation across
hops (caller -> sidecar -> relay_app -> sidecar -> target).

  relay_app.py --target http://SERVICE[:PORT][/PREFIX] --proxy HOST:PORT PORT
                (PORT 0: any free port; the first stdout line is "relay app listening on 127.0.0.1:PORT")

Every request (any method; its body read, sized or chunked) is made again, with the same method, path, query and
body, to TARGET + path through the plain HTTP forward proxy HOST:PORT (absolute form: "GET http://SERVICE/path",
Host: SERVICE), carrying over the incoming x-mesh-timeout-ms, grpc-timeout and content-type headers: the way an app
propagates the mesh's deadline. The upstream socket timeout is 30 s; one upstream connection per incoming one,
reopened after an error. The answer has the upstream's status and body, its x-mesh-error, x-backend and
content-type headers if any, and x-relayed: 1. A transport error upstream (timeout, reset, refused) is answered
502 with the body "relay: upstream <ExceptionClass>: <message>".

  GET /_relay/stats   {"requests": n, "incoming_timeouts": [the incoming x-mesh-timeout-ms values, as strings, of
                       the last 50 relayed requests that had one]}; not relayed, not counted

Logs one line per relayed request to stderr:
  relay: <method> <path> timeout_ms=<incoming x-mesh-timeout-ms or -> upstream=<status or exception> after_ms=<n>
Client disconnects are ignored; SIGTERM exits at once.
"""
import argparse, collections, http.client, json, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit
from fixture_server import Server, read_body

UPSTREAM_TIMEOUT = 30.0
CARRIED_HEADERS = ("x-mesh-timeout-ms", "grpc-timeout", "content-type")
ANSWER_HEADERS = ("x-mesh-error", "x-backend", "content-type")


class State:
    """What the handler threads share; guarded by `lock`."""

    def __init__(self, target, proxy):
        self.lock = threading.Lock()
        self.target, self.proxy = target, proxy  # "http://service" (no trailing /), ("127.0.0.1", 15001)
        self.requests, self.incoming_timeouts = 0, collections.deque(maxlen=50)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main()
    upstream = None  # http.client.HTTPConnection to the proxy, per incoming connection

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def handle_one_request(self):
        # BaseHTTPRequestHandler.handle_one_request, but every method goes to dispatch().
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            return self.send_error(414)
        if self.parse_request():  # answers malformed requests itself
            self.dispatch()

    def dispatch(self):
        try:
            url = urlsplit(self.path)  # absolute-form targets work too
            body = self.read_body()
        except ValueError as error:  # bad target, chunk size or content-length: the connection is out of sync
            self.close_connection = True
            return self.reply(400, f"relay: bad request: {error}\n".encode(), {}, relayed=False)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if url.path == "/_relay/stats" and self.command == "GET":
            with self.state.lock:
                stats = {"requests": self.state.requests, "incoming_timeouts": list(self.state.incoming_timeouts)}
            return self.reply(200, json.dumps(stats).encode() + b"\n", {"content-type": "application/json"},
                              relayed=False)
        incoming_timeout = self.headers.get("x-mesh-timeout-ms")
        with self.state.lock:
            self.state.requests += 1
            if incoming_timeout is not None:
                self.state.incoming_timeouts.append(incoming_timeout)
        began = time.monotonic()
        status, answer, outcome = self.relay(path, body)
        after_ms = round((time.monotonic() - began) * 1000)
        print(f"relay: {self.command} {path} timeout_ms={incoming_timeout or '-'} upstream={outcome} "
              f"after_ms={after_ms}", file=sys.stderr, flush=True)
        self.reply(status, answer[0], answer[1])

    def relay(self, path, body):
        """(status, (body, headers), outcome for the log) of the same request made to the target."""
        headers = {name: self.headers[name] for name in CARRIED_HEADERS if self.headers.get(name) is not None}
        try:
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(*self.state.proxy, timeout=UPSTREAM_TIMEOUT)
            # An absolute target: http.client sends the Host header of its authority.
            self.upstream.request(self.command, self.state.target + path, body=body if body else None,
                                  headers=headers)
            response = self.upstream.getresponse()
            data = response.read()
        except Exception as error:  # timeouts, resets, refusals, malformed answers
            if self.upstream is not None:
                self.upstream.close()
            self.upstream = None
            name = type(error).__name__
            return 502, (f"relay: upstream {name}: {error}\n".encode(), {}), name
        answer_headers = {name: response.getheader(name) for name in ANSWER_HEADERS if response.getheader(name)}
        return response.status, (data, answer_headers), str(response.status)

    def read_body(self):
        """The whole request body (content-length or chunked)."""
        return read_body(self, True)

    def reply(self, status, body, headers, relayed=True):
        self.send_response(status)
        if relayed:  # also on the 502 for a transport error upstream
            self.send_header("x-relayed", "1")
        for name, value in headers.items():
            self.send_header(name, value)
        if status not in (204, 304) and status >= 200:  # these must not have a body (nor, for 204, a length)
            if "content-type" not in headers:
                self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format, *args):
        pass

    def log_error(self, format, *args):
        print(f"relay: {format % args}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description="HTTP/1.1 app that relays every request through its sidecar")
    parser.add_argument("--target", required=True, help="http://SERVICE[:PORT][/PREFIX]")
    parser.add_argument("--proxy", required=True, help="HOST:PORT of the sidecar's outbound HTTP proxy")
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    target = urlsplit(args.target)
    if target.scheme != "http" or not target.netloc or target.query:
        parser.error(f"--target must be http://SERVICE[:PORT][/PREFIX], not {args.target!r}")
    host, _, port = args.proxy.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--proxy must be HOST:PORT, not {args.proxy!r}")
    # The default action, not a Python handler: that runs on the main thread only, up to 0.5 s late.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    server = Server(("127.0.0.1", args.port), Handler)
    Handler.state = State(f"http://{target.netloc}{target.path.rstrip('/')}", (host.strip("[]"), int(port)))
    print(f"relay app listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
