"""The threaded HTTP server the Python test apps share (misbehaving_backend.py, relay_app.py)."""
import sys
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default of 5 drops SYNs under load tests (1 s retransmits)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients vanishing is part of the job
            super().handle_error(request, client_address)
