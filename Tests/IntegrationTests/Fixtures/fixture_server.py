"""The threaded HTTP server and request-body reading the Python test apps share (misbehaving_backend.py,
relay_app.py)."""
import sys
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default of 5 drops SYNs under load tests (1 s retransmits)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients vanishing is part of the job
            super().handle_error(request, client_address)


def read_body(handler, keep=True):
    """Reads a request's whole body (content-length or chunked) from a BaseHTTPRequestHandler; returns it if
    `keep`, else b"" (what was read is dropped as it comes)."""
    parts = []

    def read_exactly(count):
        while count > 0:
            data = handler.rfile.read(min(count, 65536))
            if not data:
                raise ConnectionResetError("EOF inside the request body")
            count -= len(data)
            if keep:
                parts.append(data)

    if "chunked" in handler.headers.get("transfer-encoding", "").lower():
        while (size := int(handler.rfile.readline(1024).split(b";")[0], 16)) > 0:
            read_exactly(size)
            handler.rfile.readline(1024)  # the CRLF after the chunk
        while handler.rfile.readline(65537).strip():  # trailers, up to the blank line (or EOF)
            pass
    else:
        length = int(handler.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError(f"content-length {length}")
        read_exactly(length)
    return b"".join(parts)
