#!/usr/bin/env python3
"""A gRPC client (grpcio) for the mesh's gRPC tests: calls grpc_echo.py's methods at TARGET and prints one
line per check, "ok NAME ..." or "FAIL NAME ...". Usage: grpc_client.py HOST:PORT [CHAT_MESSAGES]"""
import sys

import grpc

target = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 100
channel = grpc.insecure_channel(target)
grpc.channel_ready_future(channel).result(timeout=10)


def check(name, ok, detail=""):
    print(("ok " if ok else "FAIL ") + name + " " + str(detail), flush=True)


unary = channel.unary_unary("/echo.Echo/Unary")
reply, call = unary.with_call(b"hello mesh", timeout=10)
trailers = dict(call.trailing_metadata())
check("unary", reply == b"hsem olleh", reply)
check("unary-status", call.code() == grpc.StatusCode.OK, call.code())
check("unary-trailers", trailers.get("x-peer", "").startswith("spiffe://"), trailers)

chat = channel.stream_stream("/echo.Echo/Chat")
sent = [f"message {i}".encode() for i in range(count)]
answers = list(chat(iter(sent), timeout=30))
check("bidi", answers == [m.upper() for m in sent], f"{len(answers)} of {len(sent)}")

try:
    channel.unary_unary("/echo.Echo/Fail")(b"x", timeout=10)
    check("error-status", False, "no error")
except grpc.RpcError as error:
    check("error-status", error.code() == grpc.StatusCode.NOT_FOUND and error.details() == "no such order",
          f"{error.code()} {error.details()}")

try:
    channel.unary_unary("/echo.Nowhere/Missing")(b"x", timeout=10)
    check("unimplemented", False, "no error")
except grpc.RpcError as error:
    check("unimplemented", error.code() == grpc.StatusCode.UNIMPLEMENTED, error.code())
