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

# Opens n members of room, never reads them. With "keep", until "stop", it sends each an unsolicited pong
# (counts as heard, protocol.md §15) about every 0.5 s; at "stop" it falls silent on all of them at once;
# at "close" it closes them.
OPENER = r'''
import base64, os, resource, socket, struct, sys, threading, time
host, port, n, room = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keepalive = sys.argv[5] == "keep"
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

if keepalive:
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
    # a name of its own: the join reply's "members" counts users by name, and 15,000 random
    # 32-bit guest names collide about once in 40 runs
    s.sendall(frame(0x1, '{"type":"hello","name":"member-%d"}' % i))
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


class TimedProbe(Probe):
    """A Probe that keeps each ping's send time, so a window of the run can be judged alone."""

    def __init__(self, s, interval=0.005):
        super().__init__(s, interval)
        self.samples = []

    def _read(self):
        while True:
            try:
                m = self.c.recv_json(timeout=30)
            except Exception:
                return
            if m.get("type") == "reply":
                with self.lock:
                    t0 = self.sent.pop(m["id"], None)
                if t0 is not None:
                    self.rtts.append(time.monotonic() - t0)
                    self.samples.append((t0, self.rtts[-1]))
                if self.stop.is_set() and not self.sent:
                    return

    def slow_after(self, t, over=0.020, step=0.5):
        """The worst round trip over `over` in each `step` s after t, as text."""
        slow = {}
        for t0, rtt in self.samples:
            if t0 >= t and rtt > over:
                k = int((t0 - t) / step)
                slow[k] = max(slow.get(k, 0), rtt)
        return ", ".join("%.1f s: %.0f ms" % (k * step, v * 1000) for k, v in sorted(slow.items()))

    def since(self, t):
        """(p99, max, count) of the pings sent at or after t."""
        r = sorted(rtt for t0, rtt in self.samples if t0 >= t)
        return r[int(len(r) * 0.99) - 1], r[-1], len(r)


def start_opener(s, keep):
    opener = subprocess.Popen([sys.executable, "-c", OPENER, HOST, str(s.port), str(N), ROOM,
                               "keep" if keep else "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert opener.stdout.readline() == "open\n", "the opener failed"
    deadline = time.monotonic() + 120
    while True:
        m = members(s)
        if m >= N:
            return opener
        assert time.monotonic() < deadline, "the members never all joined: %d of %d" % (m, N)
        time.sleep(0.5)


def say(opener, what, answer):
    opener.stdin.write(what + "\n")
    opener.stdin.flush()
    assert opener.stdout.readline() == answer + "\n"


def wait_connections(s, n, timeout):
    deadline = time.monotonic() + timeout
    while metric(s, "parley_connections") > n:
        assert time.monotonic() < deadline, "still %d connections" % metric(s, "parley_connections")
        time.sleep(0.05)


def stop_opener(opener, s):
    """Ends the opener (its members hang up) and waits for parleyd to close them, so that a failed test
    does not leave 15,000 connections to the teardown's drain."""
    if opener.poll() is None:
        opener.kill()
    opener.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and metric(s, "parley_connections") > 2:
        time.sleep(0.1)


def test_15000_members_time_out_at_once_while_the_loop_keeps_answering(parley):
    assert raise_nofile(N + 500) >= N + 500, "cannot raise RLIMIT_NOFILE"
    s = parley("--ping-interval", "3", "--ping-timeout", "6", "--max-connections", str(N + 100))
    opener = start_opener(s, keep=True)
    try:
        probe = TimedProbe(s)
        probe.start()
        time.sleep(0.5)                      # a baseline before the storm
        before = metric(s, 'parley_disconnects_total{reason="hangup"}')
        stop = time.monotonic()
        say(opener, "stop", "stopped")       # every member falls silent now
        wait_connections(s, 1, 60)           # the probe is left
        time.sleep(0.5)
        p99, worst, n = probe.finish()
        print("probe: %d pings, p99 %.1f ms, max %.1f ms" % (n, p99 * 1000, worst * 1000))
        print("slow pings (> 20 ms), worst per 0.5 s after the stop (pings go out at 3 s, hang-ups at 6 s):",
              probe.slow_after(stop))
        # each member was hung up by the ping timeout (reason hangup), none lost on the way
        assert metric(s, 'parley_disconnects_total{reason="hangup"}') - before == N
        assert s.log().count("msg=ping_timeout") >= N
        assert p99 < 0.050, "ping p99 %.1f ms (max %.1f ms) during the mass time-out" % (p99 * 1000, worst * 1000)
    finally:
        stop_opener(opener, s)


def test_15000_slow_consumers_closed_at_once_while_the_loop_keeps_answering(parley):
    """The members stop reading; publishes fill their sockets (a big room's fan-out costs what it costs:
    not judged here), then one or a few fan-outs find all 15,000 past send_queue_messages. Judged: from
    the publish that made the first 4008 on, through the closes and, CLOSE_WAIT_S (30 s) later, the
    cut-off of every member that never took its close frame."""
    assert raise_nofile(N + 500) >= N + 500, "cannot raise RLIMIT_NOFILE"
    # no ping timeout before CLOSE_WAIT_S cuts them off (a closing connection is not pinged)
    s = parley("--send-queue-messages", "20", "--ping-interval", "60", "--ping-timeout", "300",
               "--max-connections", str(N + 100))
    opener = start_opener(s, keep=False)
    try:
        pub = s.client("pub", timeout=60)
        pub.ok("join", room=ROOM)
        probe = TimedProbe(s)
        probe.start()
        time.sleep(0.5)
        before = metric(s, "parley_slow_consumer_closes_total")
        i = 0
        storm = None
        # ~2 KB messages: the members' socket buffers fill, then 20 queued, then 4008 for all of them
        while metric(s, "parley_slow_consumer_closes_total") - before < N:
            assert i < 2000, "only %d slow closes" % (metric(s, "parley_slow_consumer_closes_total") - before)
            t = time.monotonic()
            pub.ok("publish", room=ROOM, data={"i": i, "pad": "s" * 2000}, echo=False, timeout=60)
            if storm is None and metric(s, "parley_slow_consumer_closes_total") > before:
                storm = t
            i += 1
        # The members never read: each close waits CLOSE_WAIT_S for its close frame to go, then is cut
        # off.
        wait_connections(s, 2, 90)
        time.sleep(0.5)
        probe.finish()
        p99, worst, n = probe.since(storm)
        print("probe from the first 4008 on: %d pings, p99 %.1f ms, max %.1f ms; %d publishes"
              % (n, p99 * 1000, worst * 1000, i))
        print("slow pings (> 20 ms), worst per second after the first 4008:", probe.slow_after(storm, step=1))
        assert metric(s, "parley_slow_consumer_closes_total") - before == N
        assert metric(s, 'parley_disconnects_total{reason="slow_consumer"}') == N
        assert s.log().count("msg=close_timeout") == N
        assert pub.ok("publish", room=ROOM, data="after", echo=False)["seq"] == i + 1
        assert p99 < 0.050, "ping p99 %.1f ms (max %.1f ms) during the mass 4008" % (p99 * 1000, worst * 1000)
    finally:
        stop_opener(opener, s)
