#!/usr/bin/env python3
"""A TCP echo server (opaque-TCP tests): echoes every byte back until the client closes."""
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


server = Server(("127.0.0.1", int(sys.argv[1])), Echo)
print(f"tcp echo listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
