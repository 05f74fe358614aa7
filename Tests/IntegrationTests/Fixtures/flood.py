#!/usr/bin/env python3
"""Opens N connections to HOST:PORT that never complete anything, holds them at most HOLD seconds, and
reports as one JSON line what the server did with them.

  flood.py HOST PORT N HOLD [idle|hello]

idle:  connect and send nothing.  hello: send the first bytes of a TLS ClientHello, never the rest.
Bounded: N sockets, HOLD seconds, then every socket is closed. Loopback or a test namespace only.
"""
import json, os, select, socket, sys, time

host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "idle"
HELLO_PREFIX = bytes.fromhex("160301020001") # record header and the start of a handshake header

start = time.monotonic()
socks, failed = [], 0
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
        if mode == "hello":
            s.send(HELLO_PREFIX)
        s.setblocking(False)
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
connected_s = time.monotonic() - start

# A socket the server closed reads as EOF (b"") or a reset; record when.
closed_at = {}
poller = select.poll()
by_fd = {s.fileno(): s for s in socks}
for fd in by_fd:
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
deadline = start + hold
while len(closed_at) < len(socks) and time.monotonic() < deadline:
    for fd, _ in poller.poll(max(0, min(250, (deadline - time.monotonic()) * 1000))):
        s = by_fd[fd]
        try:
            data = s.recv(4096)
            if data:
                continue  # e.g. a TLS alert before the close
        except BlockingIOError:
            continue
        except OSError:
            pass
        closed_at[fd] = time.monotonic() - start
        poller.unregister(fd)

times = sorted(closed_at.values())
quick = sum(1 for t in times if t < 1.0)
for s in socks:
    s.close()
print(json.dumps({
    "opened": len(socks), "connect_failed": failed, "connect_seconds": round(connected_s, 2),
    "closed_by_server": len(times), "closed_within_1s": quick,
    "still_open_at_end": len(socks) - len(times),
    "first_close_s": round(times[0], 2) if times else None,
    "last_close_s": round(times[-1], 2) if times else None,
}))
