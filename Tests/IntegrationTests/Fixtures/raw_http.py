"""Sends raw bytes to HOST:PORT in one write and prints every complete HTTP/1.1 response read back, as JSON lines
({"status": N, "headers": {...}, "body": "..."}), until EOF or a quiet second. Usage: raw_http.py HOST PORT HEX
(the request bytes, hex-encoded, so tests can send exactly what they mean)."""
import json
import socket
import sys

host, port, payload = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
s.sendall(payload)
s.settimeout(2)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
s.close()

while data:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        print(json.dumps({"truncated_head": data[:200].decode("latin-1")}))
        break
    lines = data[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    data = data[end + 4:]
    length = int(headers.get("content-length", "0"))
    if status < 200:
        length = 0
    if len(data) < length:
        print(json.dumps({"status": status, "headers": headers, "truncated_body": len(data), "expected": length}))
        break
    body, data = data[:length], data[length:]
    print(json.dumps({"status": status, "headers": headers, "body": body.decode("latin-1")}))
