#!/usr/bin/env python3
"""A WebSocket client written from RFC 6455 on a plain socket, so it can talk through an HTTP proxy with an
absolute-form request target. Usage: ws_client.py HOST:PORT TARGET (e.g. /chat or http://echo/chat).
Prints the greeting, the echo of a text message, and whether 1 MiB of binary came back intact."""
import base64
import os
import socket
import struct
import sys

host, port = sys.argv[1].rsplit(":", 1)
target = sys.argv[2]
s = socket.create_connection((host, int(port)), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {target} HTTP/1.1\r\nHost: echo\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("closed during handshake: " + buf.decode(errors="replace"))
    buf += chunk
head, buf = buf.split(b"\r\n\r\n", 1)
print(head.split(b"\r\n")[0].decode(), flush=True)
if b" 101 " not in head.split(b"\r\n")[0]:
    sys.exit(1)


def recv_exact(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out


def read_frame():
    b0, b1 = recv_exact(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", recv_exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", recv_exact(8))[0]
    return b0 & 0x0F, recv_exact(length)


def send_frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x80 | opcode])
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


print("greeting:", read_frame()[1].decode(), flush=True)
send_frame(1, b"ping through the mesh")
print("text:", read_frame()[1].decode(), flush=True)
blob = os.urandom(1 << 20)
send_frame(2, blob)
print("binary intact:", read_frame()[1] == blob, flush=True)
send_frame(8, b"\x03\xe8")
