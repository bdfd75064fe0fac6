"""A seq is never handed out twice, crash or not (issue 10, point 2).

parleyd delivers a persisted message live before its batch is committed, so kill -9 loses the seqs
handed out since the last commit. The next start must not give those seqs to other messages.
"""

import signal
import threading
import time

from conftest import WSClosed
from storagehelp import read_all_history


def _publisher(srv, room, stop):
    """Publishes persisted messages (no ids awaited) until stop is set or the server dies."""
    p = srv.client("pub", timeout=10)
    p.join(room)
    i = 0
    try:
        while not stop.is_set():
            p.send_cmd("publish", room=room, data={"i": i}, echo=False)
            i += 1
            if i % 50 == 0:
                p.sync()  # keep the send queue short: the server is the bottleneck, not the socket
    except Exception:
        pass  # the server was killed under us: expected


def test_kill_9_while_publishing_next_seq_is_above_every_seq_seen_live(parley):
    # A long flush interval: most of what is published is delivered live but not yet on disk.
    s1 = parley("--flush-interval-ms", "10000")
    watcher = s1.client("watch", timeout=10)
    watcher.join("r")
    seen = watcher.ok("publish", room="r", data="on disk", echo=False, durable=True)["seq"]
    stop = threading.Event()
    t = threading.Thread(target=_publisher, args=(s1, "r", stop), daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while seen < 500 and time.monotonic() < deadline:
        m = watcher.next_json()
        if m.get("type") == "message":
            assert m["seq"] == seen + 1, "live seqs are consecutive"
            seen = m["seq"]
    assert seen >= 500, "the publisher did not get going"
    s1.kill9()
    stop.set()
    try:  # whatever was still in flight to the watcher also counts as seen
        while True:
            m = watcher.next_json(timeout=2)
            if m.get("type") == "message":
                seen = max(seen, m["seq"])
    except (WSClosed, OSError, AssertionError):
        pass
    t.join(timeout=15)

    s2 = parley(data_dir=s1.data_dir)
    h = s2.client("hist", timeout=30)
    h.join("r")
    stored = [m["seq"] for m in read_all_history(h, "r")]
    b = s2.client("bob", timeout=30)
    assert stored, "nothing was committed before the kill"
    assert stored[-1] < seen, "the test needs seqs that were seen live but not committed"
    assert stored == list(range(1, stored[-1] + 1)), "history below the crash keeps its seqs"
    # A join with since = the last seq seen live cannot be a complete recovery: the server lost
    # messages it had delivered, and says so.
    reply = b.join("r", since=seen, skip=True)
    assert reply["seq"] > seen
    assert reply["recovered"] is False
    assert b.ok("publish", room="r", data="after", echo=False, skip=True)["seq"] > seen
    assert s2.stop(signal.SIGTERM) == 0

    # A clean stop skips nothing: the seq continues by one.
    s3 = parley(data_dir=s1.data_dir)
    c = s3.client("carol")
    last = c.join("r")["seq"]
    assert c.ok("publish", room="r", data="clean", echo=False)["seq"] == last + 1


def test_kill_9_room_never_committed_does_not_restart_at_1(parley):
    s1 = parley("--flush-interval-ms", "10000")
    a = s1.client("alice")
    a.join("mem")
    seqs = [a.ok("publish", room="mem", data=i, echo=False)["seq"] for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    s1.kill9()
    s2 = parley(data_dir=s1.data_dir)
    b = s2.client("bob")
    j = b.join("mem", since=5)
    assert j["seq"] >= 5 and j["recovered"] is False
    assert b.ok("history", room="mem")["messages"] == []
    assert b.ok("publish", room="mem", data="new", echo=False)["seq"] > 5


def test_two_kills_in_a_row_never_reuse(parley):
    s1 = parley("--flush-interval-ms", "10000")
    a = s1.client("alice")
    a.join("r")
    a.ok("publish", room="r", data="durable", echo=False, durable=True)
    first = [a.ok("publish", room="r", data=i, echo=False)["seq"] for i in range(3)]
    s1.kill9()
    s2 = parley("--flush-interval-ms", "10000", data_dir=s1.data_dir)
    b = s2.client("bob")
    b.join("r")
    second = [b.ok("publish", room="r", data=i, echo=False)["seq"] for i in range(3)]
    assert min(second) > max(first)
    s2.kill9()  # nothing of the second run was committed
    s3 = parley(data_dir=s1.data_dir)
    c = s3.client("carol")
    c.join("r")
    assert c.ok("publish", room="r", data="third", echo=False)["seq"] > max(second)
