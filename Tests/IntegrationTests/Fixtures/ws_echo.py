#!/usr/bin/env python3
"""A WebSocket echo server (python3-websockets from apt) for the upgrade tests: sends a greeting right after the
handshake, then echoes every message, prefixed with the x-mesh-peer-identity the sidecar stamped.
Takes its port last; prints "ws echo listening on 127.0.0.1:PORT"."""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    peer = ws.request_headers.get("x-mesh-peer-identity", "")
    await ws.send("hello " + peer)
    async for message in ws:
        await ws.send(message if isinstance(message, bytes) else "echo " + message)


async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ws echo listening on 127.0.0.1:{port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
