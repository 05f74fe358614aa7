"""A small OTLP/HTTP trace receiver for the telemetry tests (opentelemetry-proto from PyPI, on PYTHONPATH).

    otlp_receiver.py [--discard] 0    listens on 127.0.0.1 (a free port), prints "... listening on 127.0.0.1:PORT"

--discard (benchmarks): exports are answered 200 and counted, not decoded or kept.

POST /v1/traces   an ExportTraceServiceRequest (protobuf); its spans are kept (answered as the mode says)
GET  /_spans      every span kept, as JSON: trace_id, span_id, parent_span_id (hex), name, kind, service,
                  attributes {key: value}
POST /_mode       {"status": 500} answers exports with that status (200: accept again); {"delay_ms": N} waits
                  first; the spans of a refused export are not kept
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

lock = threading.Lock()
spans = []
mode = {"status": 200, "delay_ms": 0}
exports = {"accepted": 0, "refused": 0, "bytes": 0}
DISCARD = "--discard" in sys.argv


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/_mode":
            with lock:
                mode.update(json.loads(body or b"{}"))
            return self.reply(200, b"{}", "application/json")
        if self.path != "/v1/traces":
            return self.reply(404, b"not found", "text/plain")
        with lock:
            status, delay = mode["status"], mode["delay_ms"]
        if delay:
            time.sleep(delay / 1000)
        if status != 200:
            with lock:
                exports["refused"] += 1
            return self.reply(status, b"refused by the test", "text/plain")
        if DISCARD:
            with lock:
                exports["accepted"] += 1
                exports["bytes"] += len(body)
            return self.reply(200, b"", "application/x-protobuf")
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        kept = []
        for resource_spans in request.resource_spans:
            service = next(
                (value(a.value) for a in resource_spans.resource.attributes if a.key == "service.name"), None)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    kept.append({
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(), "name": span.name, "kind": span.kind,
                        "service": service, "status": span.status.code,
                        "attributes": {a.key: value(a.value) for a in span.attributes},
                    })
        with lock:
            spans.extend(kept)
            exports["accepted"] += 1
        self.reply(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def do_GET(self):
        if self.path == "/_spans":
            with lock:
                body = json.dumps({"spans": spans, "exports": exports}).encode()
            return self.reply(200, body, "application/json")
        self.reply(404, b"not found", "text/plain")

    def reply(self, status, body, content_type):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"otlp receiver listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
