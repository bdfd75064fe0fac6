"""Mass server-side close: 15,000 members of one room that parleyd itself closes at once; the loop keeps
answering.

test_mass_leave.py covers clients that hang up (FIN/RST), which server/hangup.c closes a batch per loop
iteration. These cover the closes parleyd starts:

- the ping-timeout sweep: every member stops answering at the same moment (a network partition, a fleet
  of laptops going to sleep) and is hung up ping_timeout later, in one or two sweeps;
- slow-consumer closes (4008): every member of a big room stops reading, and one fan-out finds them all
  past send_queue_messages.

A probe connection (not in the room) pings every 5 ms during the storm; the p99 of its round trips must
stay under 50 ms, as in test_mass_leave.py. The members are opened by a child process (its own descriptor
table) that never reads them.

Runs alone (heavy): `false` in tests/e2e/meson.build's parallel column.
"""

import os
import subprocess
import sys
import time

from conftest import HOST
from test_mass_leave import Probe, metric, raise_nofile, members

N = int(os.environ.get("PARLEY_MASS_N", "15000"))
ROOM = "crowd"

# Opens n members of room, never reads them. While "keep" it sends each an unsolicited pong (counts as
# heard, protocol.md §15) at least every 0.5 s; at "stop" it falls silent on all of them at once; at
# "close" it closes them.
OPENER = r'''
import base64, os, resource, socket, struct, sys, threading, time
host, port, n, room = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def frame(op, text):
    p = text.encode()
    key = os.urandom(4)
    hdr = bytes([0x80 | op])
    if len(p) < 126:
        hdr += bytes([0x80 | len(p)])
    else:
        hdr += bytes([0x80 | 126]) + struct.pack("!H", len(p))
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(p))

PONG = frame(0xA, "k")
req = ("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
       % (host, port, base64.b64encode(os.urandom(16)).decode())).encode()
socks = []
lock = threading.Lock()
keep = threading.Event()
keep.set()

def keeper():
    while keep.is_set():
        t0 = time.monotonic()
        with lock:
            cur = list(socks)
        for s in cur:
            if not keep.is_set():
                return
            try:
                s.send(PONG, socket.MSG_DONTWAIT)
            except OSError:
                pass
        time.sleep(max(0.0, 0.5 - (time.monotonic() - t0)))

threading.Thread(target=keeper, daemon=True).start()
for i in range(n):
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("closed during the handshake at %d" % i)
        buf += chunk
    if not buf.startswith(b"HTTP/1.1 101"):
        sys.exit("handshake refused at %d: %r" % (i, buf[:100]))
    s.sendall(frame(0x1, '{"type":"join","room":"%s"}' % room))
    with lock:
        socks.append(s)
sys.stdout.write("open\n")
sys.stdout.flush()
for line in sys.stdin:
    if line.strip() == "stop":
        keep.clear()
        sys.stdout.write("stopped\n")
        sys.stdout.flush()
    elif line.strip() == "close":
        for s in socks:
            s.close()
        sys.stdout.write("closed\n")
        sys.stdout.flush()
        break
'''


def start_opener(s):
    opener = subprocess.Popen([sys.executable, "-c", OPENER, HOST, str(s.port), str(N), ROOM],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert opener.stdout.readline() == "open\n", "the opener failed"
    deadline = time.monotonic() + 120
    while members(s) < N:
        assert time.monotonic() < deadline, "the members never all joined"
        time.sleep(0.5)
    return opener


def say(opener, what, answer):
    opener.stdin.write(what + "\n")
    opener.stdin.flush()
    assert opener.stdout.readline() == answer + "\n"


def wait_connections(s, n, timeout):
    deadline = time.monotonic() + timeout
    while metric(s, "parley_connections") > n:
        assert time.monotonic() < deadline, "still %d connections" % metric(s, "parley_connections")
        time.sleep(0.05)


def stop_opener(opener):
    if opener.poll() is None:
        opener.kill()
    opener.wait()


def test_15000_members_time_out_at_once_while_the_loop_keeps_answering(parley):
    assert raise_nofile(N + 500) >= N + 500, "cannot raise RLIMIT_NOFILE"
    s = parley("--ping-interval", "3", "--ping-timeout", "6", "--max-connections", str(N + 100))
    opener = start_opener(s)
    try:
        probe = Probe(s)
        probe.start()
        time.sleep(0.5)                      # a baseline before the storm
        before = metric(s, 'parley_disconnects_total{reason="hangup"}')
        say(opener, "stop", "stopped")       # every member falls silent now
        wait_connections(s, 1, 60)           # the probe is left
        time.sleep(0.5)
        p99, worst, n = probe.finish()
        print("probe: %d pings, p99 %.1f ms, max %.1f ms" % (n, p99 * 1000, worst * 1000))
        # each member was hung up by the ping timeout (reason hangup), none lost on the way
        assert metric(s, 'parley_disconnects_total{reason="hangup"}') - before == N
        assert s.log().count("msg=ping_timeout") >= N
        assert p99 < 0.050, "ping p99 %.1f ms (max %.1f ms) during the mass time-out" % (p99 * 1000, worst * 1000)
    finally:
        stop_opener(opener)


def test_15000_slow_consumers_closed_at_once_while_the_loop_keeps_answering(parley):
    assert raise_nofile(N + 500) >= N + 500, "cannot raise RLIMIT_NOFILE"
    s = parley("--send-queue-messages", "20", "--max-connections", str(N + 100))
    opener = start_opener(s)
    try:
        pub = s.client("pub", timeout=60)
        pub.ok("join", room=ROOM)
        probe = Probe(s)
        probe.start()
        time.sleep(0.5)
        before = metric(s, "parley_slow_consumer_closes_total")
        # ~2 KB messages: the members' socket buffers fill, then 20 queued, then 4008 for all of them
        i = 0
        while metric(s, "parley_slow_consumer_closes_total") - before < N:
            assert i < 2000, "only %d slow closes" % (metric(s, "parley_slow_consumer_closes_total") - before)
            pub.ok("publish", room=ROOM, data={"i": i, "pad": "s" * 2000}, echo=False, timeout=60)
            i += 1
        # the members never read: each close waits for its close frame to go, then CLOSE_WAIT_S
        # (30 s) at most; the opener's keeper still pongs, so no ping timeout comes first
        wait_connections(s, 2, 90)
        time.sleep(0.5)
        p99, worst, n = probe.finish()
        print("probe: %d pings, p99 %.1f ms, max %.1f ms, %d publishes" % (n, p99 * 1000, worst * 1000, i))
        assert metric(s, "parley_slow_consumer_closes_total") - before == N
        assert metric(s, 'parley_disconnects_total{reason="slow_consumer"}') == N
        assert p99 < 0.050, "ping p99 %.1f ms (max %.1f ms) during the mass 4008" % (p99 * 1000, worst * 1000)
    finally:
        stop_opener(opener)
