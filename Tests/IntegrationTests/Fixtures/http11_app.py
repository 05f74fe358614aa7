#!/usr/bin/env python3
"""HTTP/1.1 edge cases for the integration tests, with exact control of the wire format.

  GET  /chunked     chunked response of three chunks and a trailer x-checksum
  HEAD /sized       content-length 5, no body
  GET  /sized       content-length 5, body "hello"
  GET  /close       answers with Connection: close and closes
  GET  /hints       103 Early Hints, then 200
  POST /echo        reads a chunked or sized body and answers with its length and trailers seen
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536

    def do_HEAD(self):
        if self.path == "/sized":
            self.send_response(200)
            self.send_header("content-length", "5")
            self.end_headers()
        else:
            self.send_error(404)

    def do_GET(self):
        if self.path == "/sized":
            self.send_response(200)
            self.send_header("content-length", "5")
            self.end_headers()
            self.wfile.write(b"hello")
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.send_header("trailer", "x-checksum")
            self.end_headers()
            for part in (b"one,", b"two,", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nx-checksum: 42\r\n\r\n")
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("content-length", "2")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(b"ok")
            self.close_connection = True
        elif self.path == "/hints":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n")
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        else:
            self.send_error(404)

    def do_POST(self):
        received, trailers = 0, {}
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        line = self.rfile.readline().strip()
                        if not line:
                            break
                        name, _, value = line.decode().partition(":")
                        trailers[name.strip().lower()] = value.strip()
                    break
                received += len(self.rfile.read(size))
                self.rfile.readline()
        else:
            received = len(self.rfile.read(int(self.headers.get("content-length", "0"))))
        body = json.dumps({"received": received, "trailers": trailers}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(f"http11 app listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
