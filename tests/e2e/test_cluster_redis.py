"""Cluster against Redis's failures (docs/cluster.md): Redis unreachable (publishes fail with
`unavailable`, history keeps working, recovery when it is back), Redis killed and restarted under
load with AOF everysec (every node ends with the same history, no seq reused, every acknowledged
message there), a node whose log position was trimmed away refuses to start, and the documented
resynchronisation (a WAL-safe copy of a peer's database) brings it back."""

import os
import signal
import sqlite3
import subprocess
import threading
import time

from clusterhelp import cluster, history, metric, wait_for, wait_log  # noqa: F401 (fixture)
from conftest import tmp_data_root  # noqa: F401 (fixture)


def test_redis_unreachable_then_back(cluster):
    redis = cluster.redis()
    a, b = cluster.nodes(redis, 2, "--cluster-timeout-ms", "500", "--cluster-hold-ms", "1000")
    ca = a.client("u")
    ca.join("room")
    for i in range(5):
        ca.ok("publish", room="room", data={"i": i}, echo=False)
    hb = b.client("hb")
    hb.join("room")
    wait_for(lambda: len(history(hb, "room")) == 5, 10, "b applied 5")
    # Redis stops answering (SIGSTOP): the publish in flight times out with unavailable, and
    # once the connection is declared lost, publishes fail at once
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        assert ca.err("publish", room="room", data={"i": 99}, key="k99", echo=False, timeout=5) == "unavailable"
        assert time.monotonic() - t0 < 3
        wait_for(lambda: metric(a, "parley_cluster_redis_connected") == 0, 10, "connection declared lost")
        t0 = time.monotonic()
        assert ca.err("publish", room="room", data={"i": 100}, echo=False) == "unavailable"
        assert time.monotonic() - t0 < 0.5
        # volatile ones too (they go through the log), and the HTTP-visible counters move
        assert ca.err("publish", room="room", data={"v": 1}, persist=False, echo=False) == "unavailable"
        assert metric(a, "parley_cluster_unavailable_total") >= 3
        assert metric(a, "parley_errors_total{code=\"unavailable\"}") >= 3
        # history and join with since are served from the node's own copy
        h = b.client("h")
        d = h.ok("join", room="room", since=2, skip=True)
        assert d["seq"] == 5
        assert [m["data"]["i"] for m in history(h, "room")] == [0, 1, 2, 3, 4]
        status, _, body = a.http_get("/healthz")
        assert status == 200
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    # back: the same Redis (same run_id), publishes work again; the retry with the same key of the
    # publish that timed out gets one seq, whether or not its first attempt made it into the log
    wait_for(lambda: metric(a, "parley_cluster_publishing") == 1, 15, "publishing again")
    s99 = ca.ok("publish", room="room", data={"i": 99}, key="k99", echo=False)["seq"]
    s100 = ca.ok("publish", room="room", data={"i": 100}, echo=False)["seq"]
    assert s100 == s99 + 1
    for n in (a, b):
        h = n.client("h2")
        h.join("room")
        wait_for(lambda: len(history(h, "room")) == 7, 10, "7 messages")
        assert [m["data"]["i"] for m in history(h, "room")] == [0, 1, 2, 3, 4, 99, 100]
        assert [m["seq"] for m in history(h, "room")] == list(range(1, 8))


def _publisher(node, name, rooms, stop, acked, errors, seen_unavailable):
    """Publishes keyed messages round-robin over rooms until stop; retries unavailable ones with the
    same key (as parley.js does). acked: list of (room, key, seq)."""
    try:
        c = node.client(name, timeout=10)
        for r in rooms:
            c.join(r, skip=True)
        i = 0
        while not stop.is_set():
            room = rooms[i % len(rooms)]
            key = "%s-%d" % (name, i)
            while True:
                r = c.request("publish", room=room, data={"p": name, "i": i}, key=key, echo=False,
                              skip=True, timeout=15)
                c.backlog.clear()  # other publishers' messages: not needed here
                if r["ok"]:
                    acked.append((room, key, r["data"]["seq"]))
                    break
                assert r["error"]["code"] == "unavailable", r
                seen_unavailable.append(1)
                time.sleep(0.05)
            if i % 4 == 0:
                # volatile messages go through the log too (seq 0); a restore re-appends fillers
                # for the ones Redis lost, keeping every node's offsets aligned
                r = c.request("publish", room=room, data={"p": name, "v": i}, persist=False, echo=False,
                              skip=True, timeout=15)
                c.backlog.clear()
                assert r["ok"] or r["error"]["code"] == "unavailable", r
            i += 1
    except Exception as e:  # noqa: BLE001
        errors.append(e)


def _listen(c, out, stop):
    while not stop.is_set():
        try:
            f = c.next_json(timeout=0.2)
        except Exception:  # noqa: BLE001 (timeout)
            continue
        if f.get("type") == "message" and "i" in f["data"]:
            out.append((f["room"], f["seq"], f["data"]["p"], f["data"]["i"]))


def test_redis_restart_under_load(cluster):
    redis = cluster.redis(appendfsync="everysec")
    nodes = cluster.nodes(redis, 3)
    rooms = ["a", "b", "c", "d"]
    stop, lstop = threading.Event(), threading.Event()
    acked, errors, unav = [], [], []
    heard = [[] for _ in nodes]
    listeners = []
    for i, n in enumerate(nodes):
        c = n.client("listen%d" % i, timeout=10)
        for r in rooms:
            c.join(r, skip=True)
        listeners.append(threading.Thread(target=_listen, args=(c, heard[i], lstop)))
    pubs = [threading.Thread(target=_publisher, args=(n, "p%d" % i, rooms, stop, acked, errors, unav))
            for i, n in enumerate(nodes)]
    for t in listeners + pubs:
        t.start()
    time.sleep(1.5)
    redis.snapshot()
    time.sleep(0.7)
    before = len(acked)
    # A crash that loses the last 0.7 s of writes (what appendfsync everysec can lose when the
    # machine dies; a kill -9 alone loses nothing the kernel already has): Redis comes back
    # without entries that every node applied and clients saw.
    redis.crash_to_snapshot()
    time.sleep(0.3)
    redis.start()
    for n in nodes:
        wait_log(n, "msg=cluster_restored", timeout=20)
    assert any("has_lost_entries=1" in n.log() for n in nodes), "the crash lost nothing"
    time.sleep(4)          # the hold ends; publishing goes on
    stop.set()
    for t in pubs:
        t.join(30)
    assert not errors, errors
    assert before > 20 and len(acked) > before, (before, len(acked))
    assert unav, "no publish saw the hold"
    # every node ends with the same history
    hist = []
    for i, n in enumerate(nodes):
        h = n.client("h%d" % i, timeout=10)
        per = {}
        for r in rooms:
            h.join(r, skip=True)
            per[r] = [(m["seq"], m["data"]["p"], m["data"]["i"]) for m in history(h, r)]
        hist.append(per)
    wait_for(lambda: True, 1)
    assert hist[0] == hist[1] == hist[2]
    for r in rooms:
        seqs = [s for s, _, _ in hist[0][r]]
        assert seqs == sorted(set(seqs)), "duplicate or unordered seq in %s" % r
        payloads = [(p, i) for _, p, i in hist[0][r]]
        assert len(payloads) == len(set(payloads)), "a message stored twice in %s" % r
    # every acknowledged message is there, under the seq its publisher was told
    by_key = {}
    for r in rooms:
        for s, p, i in hist[0][r]:
            by_key[(r, "%s-%d" % (p, i))] = s
    for room, key, seq in acked:
        assert by_key.get((room, key)) == seq, (room, key, seq, by_key.get((room, key)))
    # no seq a client saw was ever given to another message
    lstop.set()
    for t in listeners:
        t.join(10)
    for i, got in enumerate(heard):
        for room, seq, p, n in got:
            if seq:
                assert by_key.get((room, "%s-%d" % (p, n))) == seq, (i, room, seq, p, n)
    assert metric(nodes[0], "parley_cluster_restores_total") == 1
    # the lost entries were put back by the nodes (the first one to reach an offset wins)
    assert sum(metric(n, "parley_cluster_restored_entries_total") for n in nodes) >= 1


def test_trimmed_position_refuses_then_resync(cluster):
    redis = cluster.redis()
    flags = ("--cluster-log-window", "1000", "--cluster-read-count", "200")
    a = cluster.node(redis, *flags)
    b = cluster.node(redis, *flags)
    ca = a.client("u")
    ca.join("t")
    for i in range(10):
        ca.ok("publish", room="t", data={"i": i}, echo=False)
    hb = b.client("h")
    hb.join("t")
    wait_for(lambda: len(history(hb, "t")) == 10, 10, "b applied 10")
    b.close_clients()
    assert b.stop() == 0
    # while b is down, more than the window goes through the room's shard
    pending = []
    for i in range(10, 3010):
        pending.append(ca.send_cmd("publish", room="t", data={"i": i}, echo=False))
        if len(pending) >= 200:
            for cid in pending:
                assert ca.wait_reply(cid, skip=True)["ok"]
            pending = []
    for cid in pending:
        assert ca.wait_reply(cid, skip=True)["ok"]
    # b's position was trimmed away: it refuses to start, naming the resync procedure
    b2 = cluster.node(redis, *flags, data_dir=b.data_dir, name="node1", wait_ready=False)
    wait_for(lambda: not b2.running(), 20, "b to refuse")
    assert b2.proc.returncode == 3
    b2.returncode = 3
    b2._log.close()
    assert "msg=cluster_failed_closed" in b2.log() and "Resynchronising a node" in b2.log()
    # the documented procedure: a WAL-safe copy of a live peer's database
    dst = os.path.join(b.data_dir, "parley.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(dst + suffix):
            os.unlink(dst + suffix)
    subprocess.run(["sqlite3", os.path.join(a.data_dir, "parley.db"), ".backup '%s'" % dst], check=True)
    b3 = cluster.node(redis, *flags, data_dir=b.data_dir, name="node1")
    ca.ok("publish", room="t", data={"i": 3010}, echo=False)
    h = b3.client("h")
    h.join("t")
    wait_for(lambda: len(history(h, "t")) == 3011, 15, "b caught up")
    assert [m["data"]["i"] for m in history(h, "t")] == list(range(3011))
    assert [m["seq"] for m in history(h, "t")] == list(range(1, 3012))


def test_gap_while_running_fails_closed(cluster):
    """A running node that finds a gap (it stalled longer than the window) stops applying and
    publishing, answers /healthz 503, and keeps serving the history it has."""
    redis = cluster.redis()
    flags = ("--cluster-log-window", "1000", "--cluster-read-count", "200")
    a = cluster.node(redis, *flags)
    b = cluster.node(redis, *flags)
    ca = a.client("u")
    ca.join("g")
    for i in range(5):
        ca.ok("publish", room="g", data={"i": i}, echo=False)
    cb = b.client("v")
    cb.join("g")
    wait_for(lambda: len(history(cb, "g")) == 5, 10, "b applied 5")
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        pending = []
        for i in range(5, 3005):
            pending.append(ca.send_cmd("publish", room="g", data={"i": i}, echo=False))
            if len(pending) >= 200:
                for cid in pending:
                    assert ca.wait_reply(cid, skip=True)["ok"]
                pending = []
        for cid in pending:
            assert ca.wait_reply(cid, skip=True)["ok"]
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    wait_log(b, "msg=cluster_failed_closed", timeout=20)
    assert b.running()
    status, _, body = b.http_get("/healthz")
    assert status == 503 and b"resynchronise" in body
    assert metric(b, "parley_cluster_failed") == 1
    cb.backlog.clear()
    assert cb.err("publish", room="g", data={"x": 1}, skip=True) == "unavailable"
    # what it has: a gap-free prefix of the room (it may have applied a few more before the stop)
    got = [m["data"]["i"] for m in history(cb, "g")]
    assert 5 <= len(got) < 3005 and got == list(range(len(got)))


def test_restore_fills_lost_volatile_for_a_node_that_missed_it(cluster):
    """Redis loses a volatile and a stored entry that only node A applied (B was stalled): A puts the
    stored one back with its content and a filler for the volatile one, so B, resuming, applies the
    message, keeps its offsets aligned (no gap), and both continue with the same history."""
    redis = cluster.redis()
    flags = ("--cluster-timeout-ms", "500", "--cluster-hold-ms", "1000")
    a = cluster.node(redis, *flags)
    b = cluster.node(redis, *flags)
    ca = a.client("u")
    ca.join("f")
    ca.ok("publish", room="f", data={"n": 1}, echo=False)
    cb = b.client("v")
    cb.join("f")
    wait_for(lambda: len(history(cb, "f")) == 1, 10, "b applied 1")
    redis.snapshot()
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        ca.ok("publish", room="f", data={"v": 1}, persist=False, echo=False)
        ca.ok("publish", room="f", data={"n": 2}, echo=False)
        redis.crash_to_snapshot()
        redis.start()
        wait_log(a, "msg=cluster_restored", timeout=20)
        assert "has_lost_entries=1" in a.log()
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    wait_log(b, "msg=cluster_restored", timeout=20)
    cb.backlog.clear()
    wait_for(lambda: len(history(cb, "f")) == 2, 10, "b applied the restored message")
    assert metric(b, "parley_cluster_failed") == 0
    wait_for(lambda: metric(a, "parley_cluster_publishing") == 1, 10, "a publishing")

    def publish3():
        r = ca.request("publish", room="f", data={"n": 3}, echo=False, skip=True)
        return r if r["ok"] else None
    wait_for(publish3, 10, "the hold to end")
    for c in (ca, cb):
        wait_for(lambda: len(history(c, "f")) == 3, 10, "3 messages")
        h = history(c, "f")
        assert [m["data"]["n"] for m in h] == [1, 2, 3] and [m["seq"] for m in h] == [1, 2, 3]
    assert metric(b, "parley_cluster_failed") == 0


def test_restore_many_rooms_to_a_node_that_missed_them(cluster):
    """The restore finds what Redis lost room by room (messages.lpos has no index): 8 rooms over
    several shards, each with rows Redis kept and rows it lost, interleaved, plus a volatile entry.
    Node A puts back every lost row with its content and seq, and B, stalled since before them,
    ends with exactly A's history in every room."""
    redis = cluster.redis()
    flags = ("--cluster-timeout-ms", "500", "--cluster-hold-ms", "1000")
    a = cluster.node(redis, *flags)
    b = cluster.node(redis, *flags)
    rooms = ["room-%d" % i for i in range(8)]
    ca = a.client("u")
    cb = b.client("v")
    for r in rooms:
        ca.join(r, skip=True)
        cb.join(r, skip=True)
    for i in range(2):
        for r in rooms:
            ca.ok("publish", room=r, data={"n": i}, echo=False)
    for r in rooms:
        wait_for(lambda: len(history(cb, r)) == 2, 10, "b applied %s" % r)
    redis.snapshot()
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        for i in range(2, 5):
            for r in rooms:
                ca.ok("publish", room=r, data={"n": i}, echo=False)
                if i == 3 and r == rooms[1]:
                    ca.ok("publish", room=r, data={"v": 1}, persist=False, echo=False)
        redis.crash_to_snapshot()
        redis.start()
        wait_log(a, "msg=cluster_restored", timeout=20)
        assert "has_lost_entries=1" in a.log()
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    wait_log(b, "msg=cluster_restored", timeout=20)
    # 8 rooms x 3 lost rows, and a filler for the volatile entry
    assert metric(a, "parley_cluster_restored_entries_total") == 25
    for r in rooms:
        wait_for(lambda: len(history(cb, r)) == 5, 10, "b applied the restored rows of %s" % r)
        ha = [(m["seq"], m["data"]["n"]) for m in history(ca, r)]
        hb = [(m["seq"], m["data"]["n"]) for m in history(cb, r)]
        assert ha == hb == [(s, s - 1) for s in range(1, 6)], (r, ha, hb)
    assert metric(a, "parley_cluster_failed") == 0
    assert metric(b, "parley_cluster_failed") == 0
