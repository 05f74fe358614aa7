"""A stand-in for journald's native socket, for machines without a journal: binds the datagram socket
libsystemd's sd_journal_send writes to, and appends each entry it receives as one JSON object per line to a file.

    fake_journal.py SOCKET_PATH OUT_FILE 0      prints "fake journal listening on SOCKET_PATH:0" when ready

Entries are NAME=value lines; a value with a newline comes as NAME\n<64-bit little-endian length><bytes>\n.
"""
import json
import os
import socket
import struct
import sys


def parse(data):
    fields, i = {}, 0
    while i < len(data):
        end = data.index(b"\n", i)
        line = data[i:end]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            i = end + 1
        else:
            name = line
            size = struct.unpack("<Q", data[end + 1:end + 9])[0]
            value = data[end + 9:end + 9 + size]
            i = end + 9 + size + 1
        fields[name.decode()] = value.decode("utf-8", "replace")
    return fields


def main():
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    print(f"fake journal listening on {path}:0", flush=True)
    with open(out, "a") as f:
        while True:
            data = sock.recv(1 << 20)
            f.write(json.dumps(parse(data)) + "\n")
            f.flush()


if __name__ == "__main__":
    sys.exit(main())
