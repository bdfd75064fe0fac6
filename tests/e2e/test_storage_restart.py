"""Persistence across a clean restart: history survives and seq continues."""

import signal
import time

from storagehelp import publish_many, read_all_history

N = 10000


def test_10000_messages_survive_sigterm_restart_and_seq_continues(parley):
    s1 = parley()
    a = s1.client("alice", timeout=30)
    a.join("r")
    t0 = time.monotonic()
    seqs = publish_many(a, "r", N, make=lambda i: {"i": i, "t": "m%05d" % i})
    assert seqs == list(range(1, N + 1))
    assert time.monotonic() - t0 < 240
    assert s1.stop(signal.SIGTERM, timeout=10) == 0

    s2 = parley(data_dir=s1.data_dir)
    b = s2.client("bob", timeout=30)
    assert b.join("r")["seq"] == N
    msgs = read_all_history(b, "r")
    assert [m["seq"] for m in msgs] == list(range(1, N + 1))
    assert [m["data"] for m in msgs] == [{"i": i, "t": "m%05d" % i} for i in range(N)]
    assert all(m["from"] == "alice" and m["room"] == "r" for m in msgs)
    assert b.ok("publish", room="r", data="next", echo=False)["seq"] == N + 1


def test_restart_keeps_rooms_separate(parley):
    s1 = parley()
    a = s1.client("alice")
    a.join("x")
    a.join("y")
    publish_many(a, "x", 5)
    publish_many(a, "y", 3)
    assert s1.stop() == 0
    s2 = parley(data_dir=s1.data_dir)
    b = s2.client("bob")
    assert b.join("x")["seq"] == 5
    assert b.join("y")["seq"] == 3
    assert b.join("z")["seq"] == 0


def test_nested_data_dir_is_created_and_holds_parley_db(parley, tmp_data_root):
    import os
    d = os.path.join(tmp_data_root, "deep", "er", "data")
    s = parley(data_dir=d)
    a = s.client("alice")
    a.join("r")
    a.ok("publish", room="r", data=1, echo=False)
    assert s.stop() == 0
    assert os.path.isfile(os.path.join(d, "parley.db"))


def test_sigterm_under_publish_load_keeps_every_acknowledged_message(parley):
    import threading
    s1 = parley()
    pubs = [s1.client("p%d" % k, timeout=10) for k in range(3)]
    for p in pubs:
        p.join("r")
    acked = []
    lock = threading.Lock()

    def load(p, k):
        try:
            for i in range(100000):
                r = p.request("publish", skip=True, room="r", data={"p": k, "i": i}, echo=False)
                if not r.get("ok"):
                    return
                with lock:
                    acked.append(r["data"]["seq"])
        except Exception:
            return  # closed by the shutdown: expected

    threads = [threading.Thread(target=load, args=(p, k), daemon=True) for k, p in enumerate(pubs)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    assert s1.stop(signal.SIGTERM, timeout=10) == 0
    for t in threads:
        t.join(timeout=10)
    for p in pubs:
        assert p.closed is not None and p.closed.code == 1001, p.closed
    assert len(acked) > 100, "too little load to prove anything (%d)" % len(acked)

    s2 = parley(data_dir=s1.data_dir)
    b = s2.client("bob", timeout=30)
    last = b.join("r")["seq"]
    stored = [m["seq"] for m in read_all_history(b, "r")]
    assert stored == list(range(1, last + 1))
    lost = sorted(set(acked) - set(stored))
    assert lost == [], "acknowledged messages lost by a clean shutdown: %r" % lost[:10]
