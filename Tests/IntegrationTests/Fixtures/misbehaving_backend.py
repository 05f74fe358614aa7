#!/usr/bin/env python3
"""An HTTP/1.1 app that fails on demand, for tests of retries, timeouts, load balancing and outlier ejection.

  misbehaving_backend.py [--name NAME] [--delay-ms N] PORT      (PORT 0: any free port, printed first on stdout)

Every other request is answered, after its body is read (sized or chunked), with x-backend: NAME and the body
"NAME\\n" (NAME defaults to backend-PORT). --delay-ms N > 0 starts in mode slow with N ms instead of mode ok.

  POST /_control/script  {"statuses": [503, 503, 200]}   replace the queue of statuses; each answered request
                         {"mode": "fail"}                 takes the next one (200 once empty) in modes ok and slow
                         {"mode": "slow", "delay_ms": 50}
  POST /_control/reset   zero the counters, empty the script, back to the startup mode (ok unless --delay-ms)
  GET  /_control/stats   {"name", "requests", "by_method", "by_path", "reset_on_accept", "disconnects",
                          "inflight", "headers" (the last 50, lowercased names), "mode", "script", "delay_ms"}
Control requests are never counted, delayed or failed; bad input gets 400 and an unknown one 404 (JSON).

Modes:
  ok                   200, or the next scripted status
  fail                 503
  slow                 sleep delay_ms, then as ok
  hang                 read the request, never answer; the socket is held until the client closes it (recorded in
                       "disconnects" as {"path", "after_ms"} since the request was read; a half-close counts) or
                       for 120 s
  reset_on_accept      RST (SO_LINGER 0) as soon as a request line arrives, before its head is parsed; only the
                       line is read, to let /_control/ through. Counted in "reset_on_accept", not "requests"
  reset_after_request  read the whole request, count it, then RST without answering

Per request, the query overrides the mode and the script: ?hang=1 or ?reset=1 (RST after reading the request);
otherwise ?status=N and/or ?delay_ms=N answer even in modes hang and reset_after_request, using the mode (and the
script) only for what is not given. "requests", "by_method" and "by_path" (no query) count every request read in
full, however it then ends. Client disconnects and resets are ignored; SIGTERM exits at once.
"""
import argparse, collections, json, select, signal, socket, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit
from fixture_server import Server, read_body

MODES = ("ok", "fail", "hang", "reset_on_accept", "reset_after_request", "slow")
HANG_LIMIT = 120.0


class State:
    """Everything the handler threads share; guarded by `lock`."""

    def __init__(self, name, mode, delay_ms):
        self.lock = threading.Lock()
        self.name, self.startup = name, (mode, delay_ms)
        self.inflight = 0
        self.reset()

    def reset(self):
        self.mode, self.delay_ms = self.startup
        self.script = collections.deque()
        self.requests, self.reset_on_accept = 0, 0
        self.by_method, self.by_path = collections.Counter(), collections.Counter()
        self.disconnects, self.headers = [], collections.deque(maxlen=50)

    def stats(self):
        # Copies, so that they can be serialised after the lock is released.
        return {"name": self.name, "requests": self.requests, "by_method": dict(self.by_method),
                "by_path": dict(self.by_path), "reset_on_accept": self.reset_on_accept,
                "disconnects": list(self.disconnects),
                "inflight": self.inflight, "headers": list(self.headers), "mode": self.mode,
                "script": list(self.script), "delay_ms": self.delay_ms}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main()
    requestline = request_version = command = ""  # for send_error() before a request line is parsed

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle could hold the body for a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self):
        # BaseHTTPRequestHandler.handle_one_request, but reset_on_accept looks at the request line first, and
        # every method goes to dispatch().
        line = self.rfile.readline(65537)
        if not line:
            self.close_connection = True
            return
        target = (line.split(b" ") + [b""])[1].split(b"?")[0]
        if self.state.mode == "reset_on_accept" and b"/_control/" not in target:
            with self.state.lock:
                self.state.reset_on_accept += 1
            return self.rst_close()
        self.raw_requestline = line
        if len(line) > 65536:
            return self.send_error(414)  # and closes: the rest of the line is still unread
        if self.parse_request():  # answers malformed requests itself
            self.dispatch()

    def dispatch(self):
        try:
            url = urlsplit(self.path)  # absolute-form targets work too
        except ValueError:
            return self.send_error(400)
        path = url.path or "/"
        try:
            body = self.read_body(keep=path.startswith("/_control/"))
        except ValueError as error:  # malformed chunk size or content-length: the connection is out of sync
            self.close_connection = True
            return self.reply(400, json.dumps({"error": f"bad body: {error}"}).encode() + b"\n", "application/json")
        if path.startswith("/_control/"):
            return self.control(path, body)
        state, read_at = self.state, time.monotonic()
        with state.lock:
            state.requests += 1
            state.by_method[self.command] += 1
            state.by_path[path] += 1
            headers = {}
            for name, value in self.headers.items():
                headers[name.lower()] = f"{headers[name.lower()]}, {value}" if name.lower() in headers else value
            state.headers.append(headers)
            state.inflight += 1
        try:
            try:
                action, status, delay_ms = self.plan(parse_qs(url.query))
            except ValueError as error:
                return self.reply(400, f"{state.name}: {error}\n".encode())
            if action == "reset":
                return self.rst_close()
            if action == "hang":
                return self.hang(path, read_at)
            if delay_ms:
                time.sleep(delay_ms / 1000)
            self.reply(status, f"{state.name}\n".encode())
        finally:
            with state.lock:
                state.inflight -= 1

    def plan(self, query):
        """(action, status, delay_ms) for a request: action is "reply", "hang" or "reset"."""
        def number(key, low, high):
            if key not in query:
                return None
            value = int(query[key][-1])
            if not low <= value <= high:
                raise ValueError(f"{key} {value} is not in {low}...{high}")
            return value

        if query.get("hang", [""])[-1] in ("1", "true"):
            return "hang", 0, 0
        if query.get("reset", [""])[-1] in ("1", "true"):
            return "reset", 0, 0
        status, delay_ms = number("status", 200, 599), number("delay_ms", 0, 600_000)
        with self.state.lock:
            mode = self.state.mode
            if status is None and delay_ms is None and mode in ("hang", "reset_after_request"):
                return ("hang" if mode == "hang" else "reset"), 0, 0
            if delay_ms is None:
                delay_ms = self.state.delay_ms if mode == "slow" else 0
            if status is None:
                status = 503 if mode == "fail" else (self.state.script.popleft() if self.state.script else 200)
        return "reply", status, delay_ms

    def control(self, path, body):
        state, code = self.state, 200
        try:
            with state.lock:
                if path == "/_control/stats":
                    pass
                elif path == "/_control/reset":
                    state.reset()
                elif path == "/_control/script":
                    self.apply_script(json.loads(body or b"{}"))
                else:
                    code = 404
                answer = state.stats() if code == 200 else {"error": f"no control endpoint {path}"}
        except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
            code, answer = 400, {"error": str(error)}
        self.reply(code, json.dumps(answer).encode() + b"\n", "application/json")

    def apply_script(self, config):
        """Validates all of `config` before changing anything (the caller holds the lock)."""
        if not isinstance(config, dict):
            raise ValueError("expected a JSON object")
        mode, statuses, delay_ms = config.get("mode"), config.get("statuses"), config.get("delay_ms")
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}, expected one of {', '.join(MODES)}")
        if statuses is not None and not (isinstance(statuses, list)
                                         and all(type(s) is int and 200 <= s <= 599 for s in statuses)):
            raise ValueError("statuses must be a list of integers in 200...599")
        if delay_ms is not None and not (type(delay_ms) is int and delay_ms >= 0):
            raise ValueError("delay_ms must be an integer >= 0")
        if mode is not None:
            self.state.mode = mode
        if statuses is not None:
            self.state.script = collections.deque(statuses)
        if delay_ms is not None:
            self.state.delay_ms = delay_ms

    def read_body(self, keep):
        """Reads the whole request body (content-length or chunked) and returns it if `keep`."""
        return read_body(self, keep)

    def reply(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("x-backend", self.state.name)
        if status not in (204, 304):  # these must not have a body (nor, for 204, a content-length)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def hang(self, path, read_at):
        """Holds the connection without answering until the client closes it or HANG_LIMIT passes."""
        self.close_connection = True
        poller = select.poll()  # not select.select: no FD_SETSIZE limit
        poller.register(self.connection, select.POLLIN | select.POLLHUP | select.POLLERR)
        while (left := read_at + HANG_LIMIT - time.monotonic()) > 0:
            if not poller.poll(left * 1000):  # returns as soon as the socket turns readable (data, EOF or RST)
                continue
            try:
                closed = not self.connection.recv(65536)  # bytes sent after the request are discarded
            except OSError:
                closed = True
            if closed:
                after_ms = round((time.monotonic() - read_at) * 1000)
                with self.state.lock:
                    self.state.disconnects.append({"path": path, "after_ms": after_ms})
                return

    def rst_close(self):
        """Closes the connection with an RST instead of a FIN, without answering."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drops the makefile() reference, so that close() really closes the descriptor now
        self.connection.close()  # socketserver's later shutdown()/close() of it fail quietly

    def log_message(self, format, *args):
        pass

    def log_error(self, format, *args):
        print(f"{self.state.name}: {format % args}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description="HTTP/1.1 app that misbehaves on demand")
    parser.add_argument("--name")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    # The default action, not a Python handler: that runs on the main thread only, up to 0.5 s late.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]
    Handler.state = State(args.name or f"backend-{port}", "slow" if args.delay_ms > 0 else "ok", args.delay_ms)
    print(f"misbehaving backend listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
