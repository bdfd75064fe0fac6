"""Worst-case memory (docs/security.md, "Worst-case memory"): a parleyd with given limits stays under the
formula while a client tries to exceed it.

The attack: one publisher fills 200 rooms with 8 near-maximal persisted messages each (about 96 MB of
messages, all eligible for the history caches: 256 per room), while members that never read sit in some
of the rooms. Before history_cache_bytes, the caches alone pinned all of it. The peak RSS (VmHWM) must stay
under the formula evaluated for these limits.

PARLEY_MEMORY_EXTRA adds flags: with "--history-cache-bytes 4294967295" (no budget, as before) the peak is
about 103-105 MiB against a bound of about 43 MiB, and the test fails.

RSS means nothing under AddressSanitizer (shadow memory, quarantine): the check is skipped there.
"""

import os
import subprocess

import pytest

from conftest import HOST, ParleyClient

MiB = 1 << 20
KiB = 1 << 10

LIMITS = {
    "max_connections": 20,
    "max_rooms": 200,
    "max_message_size": 65536,
    "send_queue_bytes": 256 * KiB,
    "send_queue_messages": 100,
    "history_cache": 256,
    "history_cache_bytes": 8 * MiB,
    "store_queue_bytes": 4 * MiB,
    "store_queue_messages": 1024,
}


def formula(L, base):
    """docs/security.md's bound, term by term (reads in flight P and idempotency keys I: 0, this test reads
    no history and sends no keys)."""
    C, K = L["max_connections"], L["max_rooms"]
    per_conn = 4 * KiB + L["max_message_size"] + 2 * (L["send_queue_bytes"] + 64 * L["send_queue_messages"]) \
        + K * 256
    rooms = C * K * KiB
    cache = L["history_cache_bytes"]
    writer = L["store_queue_bytes"] + 256 * L["store_queue_messages"]
    return base + C * per_conn + rooms + cache + writer


def rss(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s" % field)


def asan(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    return "libasan" in out


def args(L):
    a = []
    for k, v in L.items():
        a += ["--" + k.replace("_", "-"), str(v)]
    return a


def attack(s, rooms=200, per_room=8, size=60000):
    """Returns the bytes published; the clients stay open (s.clients): the rooms must live on."""
    pub = ParleyClient(HOST, s.port, timeout=30)
    idle = [ParleyClient(HOST, s.port, timeout=30, rcvbuf=4096) for _ in range(10)]
    s.clients += [pub] + idle
    if True:
        for i in range(rooms):
            pub.ok("join", room="r%d" % i)
        for j, c in enumerate(idle):        # never read: their queues fill, then 4008
            for i in range(j, rooms, 10):
                c.send_cmd("join", room="r%d" % i)
        body = "x" * size
        sent = 0
        for k in range(per_room):
            for i in range(rooms):
                while True:
                    r = pub.request("publish", room="r%d" % i, data=body, echo=False)
                    if r.get("ok"):
                        break
                    assert r["error"]["code"] == "overloaded", r
                sent += 1
        return sent * size


def test_peak_rss_stays_under_the_formula(parley):
    s = parley(*args(LIMITS), *(os.environ.get("PARLEY_MEMORY_EXTRA", "").split()))
    if asan(s.argv[0]):
        pytest.skip("RSS is meaningless under AddressSanitizer")
    base = rss(s.proc.pid, "VmRSS") + 8 * MiB  # idle parleyd + SQLite's two 2 MiB page caches, slack
    bound = formula(LIMITS, base)
    pushed = attack(s)
    assert pushed > 90 * MiB
    peak = rss(s.proc.pid, "VmHWM")
    print("peak RSS %.1f MiB, bound %.1f MiB, pushed %.1f MiB" % (peak / MiB, bound / MiB, pushed / MiB))
    assert peak <= bound, "peak RSS %.1f MiB over the bound %.1f MiB" % (peak / MiB, bound / MiB)
    m = s.metrics_get()[2].decode()
    cache = [int(l.split()[1]) for l in m.splitlines() if l.startswith("parley_history_cache_bytes ")][0]
    assert 0 < cache <= LIMITS["history_cache_bytes"]
    ev = [int(l.split()[1]) for l in m.splitlines() if l.startswith("parley_history_cache_evictions_total ")][0]
    assert ev > 0
