#!/usr/bin/env python3
"""A gRPC server (grpcio, h2c) for the mesh's gRPC tests, with raw-bytes methods so no generated code is needed:
  /echo.Echo/Unary   answers the request bytes reversed, with the caller's mesh identity in trailing metadata;
  /echo.Echo/Chat    bidirectional: answers every message upper-cased as it arrives;
  /echo.Echo/Fail    aborts with NOT_FOUND and a message, trailers only.
Takes its port last; prints "grpc echo listening on 127.0.0.1:PORT"."""
import sys
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


handlers = grpc.method_handlers_generic_handler(
    "echo.Echo",
    {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    },
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handlers,))
port = server.add_insecure_port(f"127.0.0.1:{int(sys.argv[1])}")
server.start()
print(f"grpc echo listening on 127.0.0.1:{port}", flush=True)
server.wait_for_termination()
