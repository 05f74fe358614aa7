#!/usr/bin/env python3
"""A gRPC server (grpcio, h2c) for the mesh's gRPC tests, with raw-bytes methods so no generated code is needed:
  /echo.Echo/Unary   answers the request bytes reversed, with the caller's mesh identity in trailing metadata;
  /echo.Echo/Chat    bidirectional: answers every message upper-cased as it arrives;
  /echo.Echo/Fail    aborts with NOT_FOUND and a message, trailers only;
  /echo.Echo/Flaky   aborts with UNAVAILABLE (trailers only) the first two calls with the same request bytes,
                     then answers "ok after N calls";
  /echo.Echo/TimeLeft answers the seconds the call's deadline leaves this server (grpc-timeout), or "none".
Takes its port last; prints "grpc echo listening on 127.0.0.1:PORT"."""
import sys
import threading
from concurrent import futures

import grpc


def unary(request, context):
    peer = dict(context.invocation_metadata()).get("x-mesh-peer-identity", "")
    context.set_trailing_metadata((("x-peer", peer),))
    return request[::-1]


def chat(requests, context):
    for message in requests:
        yield message.upper()


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such order")


calls = {}
calls_lock = threading.Lock()


def flaky(request, context):
    with calls_lock:
        calls[request] = calls.get(request, 0) + 1
        n = calls[request]
    if n <= 2:
        context.abort(grpc.StatusCode.UNAVAILABLE, f"not yet ({n})")
    return f"ok after {n} calls".encode()


def time_left(request, context):
    left = context.time_remaining()
    return b"none" if left is None else f"{left:.3f}".encode()


handlers = grpc.method_handlers_generic_handler(
    "echo.Echo",
    {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Flaky": grpc.unary_unary_rpc_method_handler(flaky),
        "TimeLeft": grpc.unary_unary_rpc_method_handler(time_left),
    },
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handlers,))
port = server.add_insecure_port(f"127.0.0.1:{int(sys.argv[1])}")
server.start()
print(f"grpc echo listening on 127.0.0.1:{port}", flush=True)
server.wait_for_termination()
