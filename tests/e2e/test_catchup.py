"""Catch-ups and big replies never close a client that reads (issue 10, points 1, 2, 4, 5).

A join with `since` streams its replay as the socket drains, a `history` page is cut to fit the send
queue (saying "more":true), and replies do not count toward the slow-consumer limit. Every test here runs
with the default send-queue limits (1000 frames, 1 MiB), which the old code passed with its 4008 close.
"""

import time

import pytest

from conftest import WSClosed
from storagehelp import publish_many, read_all_history


def rejoin_since(c, room, since, timeout=120):
    """Join with since; returns (messages before the reply, reply). Fails on any other frame."""
    jid = c.send_cmd("join", room=room, since=since)
    before, deadline = [], time.monotonic() + timeout
    while True:
        f = c.recv_json(timeout=max(0.01, deadline - time.monotonic()))
        if f["type"] == "reply" and f["id"] == jid:
            return before, f
        assert f["type"] == "message", f
        before.append(f)


def away_then_rejoin(parley, n, size=0, flags=()):
    s = parley(*flags)
    a = s.client("alice", timeout=60)
    a.join("r")
    pad = "x" * size
    publish_many(a, "r", 10, make=lambda i: {"i": i, "pad": pad})
    b = s.client("bob", timeout=60)
    before, r = rejoin_since(b, "r", 0)
    assert r["data"]["recovered"] is True and len(before) == 10
    b.close_socket()  # away
    publish_many(a, "r", n, make=lambda i: {"i": 10 + i, "pad": pad})
    b = s.client("bob", timeout=60)
    before, r = rejoin_since(b, "r", 10)
    assert r["ok"] is True and r["data"]["recovered"] is True, r
    assert r["data"]["seq"] == 10 + n
    assert [m["seq"] for m in before] == list(range(11, 11 + n)), "each missed message once, in order"
    assert [m["data"]["i"] for m in before] == list(range(10, 10 + n))
    # Still open, and live afterwards.
    a.ok("publish", room="r", data={"i": "live"}, echo=False)
    f = b.recv_json()
    assert f["type"] == "message" and f["seq"] == 11 + n, f
    return s


@pytest.mark.parametrize("n", [1000, 1001, 5000])
def test_away_while_n_posted_rejoin_since_gets_all_once_in_order(parley, n):
    away_then_rejoin(parley, n)


def test_away_while_n_posted_from_disk_small_cache(parley):
    # The replay comes from disk in chunks, not from the room's cache.
    away_then_rejoin(parley, 3000, flags=("--history-cache", "16"))


def test_replay_bigger_than_send_queue_bytes_300_of_8k(parley):
    # 300 x ~8 KiB = ~2.4 MiB replayed through a 1 MiB send queue.
    away_then_rejoin(parley, 300, size=8 * 1024)


def test_replay_bigger_than_send_queue_bytes_from_disk(parley):
    away_then_rejoin(parley, 300, size=8 * 1024, flags=("--history-cache", "8"))


@pytest.mark.parametrize("cache", ["256", "0"])
def test_history_page_of_100_messages_of_20k_arrives(parley, cache):
    # One page of 100 x 20 KiB (~2 MiB) does not fit a 1 MiB queue: it is cut, "more":true, and paging
    # with before = first seq fetches the rest. No page is lost, nothing closes.
    s = parley("--history-cache", cache)
    a = s.client("alice", timeout=60)
    a.join("r")
    pad = "y" * (20 * 1024)
    publish_many(a, "r", 100, make=lambda i: {"i": i, "pad": pad})
    b = s.client("bob", timeout=60)
    b.join("r")
    d = b.ok("history", room="r", limit=100)
    assert 0 < len(d["messages"]) < 100 and d["more"] is True, (len(d["messages"]), d["more"])
    assert d["messages"][-1]["seq"] == 100, "a cut page keeps the newest messages"
    msgs = read_all_history(b, "r")
    assert [m["seq"] for m in msgs] == list(range(1, 101))
    assert [m["data"]["i"] for m in msgs] == list(range(100))
    b.sync()


def test_pipelined_replies_do_not_close_a_reader(parley):
    # 3000 history commands sent before reading anything: ~6 MB of replies, far more than the
    # 1000-frame / 1 MiB queue plus what the kernel buffers. The server stops reading commands while
    # the replies wait, instead of closing; then every reply arrives.
    s = parley()
    a = s.client("alice", timeout=60, rcvbuf=4096)
    a.join("r")
    publish_many(a, "r", 2, make=lambda i: {"i": i, "pad": "h" * 1000})
    ids = [a.send_cmd("history", room="r", limit=2) for _ in range(3000)]
    for cid in ids:
        r = a.wait_reply(cid)
        assert r["ok"] is True and len(r["data"]["messages"]) == 2
    a.sync()


def test_reader_that_does_not_read_still_gets_4008_for_live_traffic(parley):
    s = parley("--send-queue-messages", "50", "--send-queue-bytes", "1048576")
    a = s.client("alice", timeout=30)
    a.join("r")
    b = s.client("bob", timeout=30, rcvbuf=4096)
    b.join("r")
    pad = "z" * 4000
    # b never reads; alice's live traffic piles up behind its small receive buffer.
    closed = False
    for i in range(2000):
        try:
            a.ok("publish", room="r", data={"i": i, "pad": pad}, echo=False, persist=False)
        except Exception:
            raise
        if i % 50 == 49 and "slow_consumer" in s.log():
            closed = True
            break
    assert closed, "a reader that does not read was never closed"
    with pytest.raises(WSClosed) as e:
        for _ in range(100000):
            b.recv_json(timeout=10)
    assert e.value.code == 4008


def test_reader_that_stops_reading_during_a_catch_up_gets_4008(parley):
    # Live traffic held behind a catch-up counts: a client that never reads is closed all the same.
    s = parley("--send-queue-messages", "100")
    a = s.client("alice", timeout=60)
    a.join("r")
    # More backlog than the kernel's socket buffers take, so the catch-up is still streaming.
    publish_many(a, "r", 4000, make=lambda i: {"i": i, "pad": "p" * 2000})
    b = s.client("bob", timeout=30, rcvbuf=4096)
    b.send_cmd("join", room="r", since=0)
    for i in range(3000):
        a.ok("publish", room="r", data={"live": i, "pad": "l" * 2000}, echo=False, persist=False)
        if i % 100 == 99 and "slow_consumer" in s.log():
            break
    assert "slow_consumer" in s.log()


def test_since_above_latest_seq_is_recovered_false(srv):
    a = srv.client("alice")
    a.join("r")
    publish_many(a, "r", 5)
    b = srv.client("bob")
    before, r = rejoin_since(b, "r", 6)
    assert before == [] and r["data"]["recovered"] is False and r["data"]["seq"] == 5, r
    before, r = rejoin_since(b, "r", 5)  # equal: nothing missed
    assert before == [] and r["data"]["recovered"] is True, r


def test_rejoin_since_on_a_joined_room_replays_like_a_first_join(srv):
    a = srv.client("alice")
    a.join("r")
    publish_many(a, "r", 20)
    b = srv.client("bob")
    b.join("r")
    before, r = rejoin_since(b, "r", 12)
    assert [m["seq"] for m in before] == list(range(13, 21))
    assert r["data"]["recovered"] is True and r["data"]["seq"] == 20
    a.ok("publish", room="r", data="live", echo=False)
    f = b.recv_json()
    assert f["type"] == "message" and f["seq"] == 21
    b.assert_nothing_pending()


def test_rejoin_since_twice_while_catching_up(parley):
    s = parley("--history-cache", "8")
    a = s.client("alice", timeout=60)
    a.join("r")
    publish_many(a, "r", 600)
    b = s.client("bob", timeout=60)
    j1 = b.send_cmd("join", room="r", since=0)
    j2 = b.send_cmd("join", room="r", since=590)
    frames = []
    while not any(f.get("id") == j2 for f in frames):
        frames.append(b.recv_json())
    msgs = [f["seq"] for f in frames if f["type"] == "message"]
    ids = [f["id"] for f in frames if f["type"] == "reply"]
    assert ids == [j1, j2]
    assert msgs == list(range(1, 601)) + list(range(591, 601))
    a.ok("publish", room="r", data="live", echo=False)
    f = b.recv_json()
    assert f["type"] == "message" and f["seq"] == 601
    b.assert_nothing_pending()


@pytest.mark.parametrize("durable", [False, True])
def test_publish_reply_does_not_overtake_its_echo_during_own_catch_up(parley, durable):
    s = parley("--history-cache", "8")
    a = s.client("alice", timeout=60)
    a.join("r")
    publish_many(a, "r", 2000, make=lambda i: {"i": i, "pad": "q" * 200})
    b = s.client("bob", timeout=60)
    jid = b.send_cmd("join", room="r", since=0)
    pid = b.send_cmd("publish", room="r", data="mine", durable=durable)  # while the catch-up streams
    frames = []
    while not any(f.get("id") == pid for f in frames):
        frames.append(b.recv_json())
    kinds = [(f["type"], f.get("id"), f.get("data")) for f in frames]
    echo = [i for i, f in enumerate(frames) if f["type"] == "message" and f["data"] == "mine"]
    join = [i for i, f in enumerate(frames) if f.get("id") == jid]
    assert len(echo) == 1 and len(join) == 1, kinds[-5:]
    assert join[0] < echo[0] < len(frames) - 1, "order must be replay, join reply, echo, publish reply"
    assert frames[echo[0]]["seq"] == 2001 == frames[-1]["data"]["seq"]
    assert [f["seq"] for f in frames[:join[0]]] == list(range(1, 2001))


def test_join_since_for_many_rooms_at_once(parley):
    # 128 rooms (max_rooms) re-joined back-to-back with since: one catch-up at a time, all complete.
    s = parley()
    a = s.client("alice", timeout=60)
    for i in range(128):
        a.join("r%d" % i)
        publish_many(a, "r%d" % i, 20)
    b = s.client("bob", timeout=60)
    ids = {b.send_cmd("join", room="r%d" % i, since=10): i for i in range(128)}
    got = {i: [] for i in range(128)}
    done = 0
    while done < 128:
        f = b.recv_json()
        if f["type"] == "message":
            got[int(f["room"][1:])].append(f["seq"])
        else:
            assert f["type"] == "reply" and f["ok"] is True and f["data"]["recovered"] is True, f
            assert got[ids[f["id"]]] == list(range(11, 21))
            done += 1


DEFAULT_RATES = ("--rate-messages", "1000", "--rate-burst", "2000", "--rate-joins", "20",
                 "--rate-history", "20", "--rate-names", "10")


def test_reconnect_into_max_rooms_rejoins_and_pages_each_without_rate_limited(parley):
    # The default limits fit together: 128 rooms (max_rooms) re-joined with since and paged once each,
    # all sent back-to-back right after connecting.
    s = parley(*DEFAULT_RATES)
    a = s.client("alice", timeout=60)
    for i in range(128):
        a.join("r%d" % i)
        a.ok("publish", room="r%d" % i, data=i, echo=False)
    b = s.client("bob", timeout=60)
    b.hello("bob")
    joins = [b.send_cmd("join", room="r%d" % i, since=0) for i in range(128)]
    pages = [b.send_cmd("history", room="r%d" % i, limit=50) for i in range(128)]
    for cid in joins + pages:
        r = b.wait_reply(cid, skip=True)
        assert r["ok"] is True, r
    assert sum(1 for f in b.backlog if f["type"] == "message") == 128


def test_max_rooms_raises_the_join_and_history_bursts(parley):
    s = parley(*DEFAULT_RATES, "--max-rooms", "300", "--rate-burst", "1000")
    b = s.client("bob", timeout=60)
    joins = [b.send_cmd("join", room="r%d" % i) for i in range(300)]
    pages = [b.send_cmd("history", room="r%d" % i) for i in range(300)]
    for cid in joins + pages:
        r = b.wait_reply(cid, skip=True)
        assert r["ok"] is True, r


def run_parleyd(tmp_path, *flags):
    import subprocess
    from conftest import parleyd_path
    return subprocess.run([parleyd_path(), "--check-config", "--data-dir", str(tmp_path), *flags],
                          capture_output=True, text=True, timeout=30)


def test_config_max_message_size_must_fit_send_queue_bytes(tmp_path):
    r = run_parleyd(tmp_path, "--max-message-size", "1048576")
    assert r.returncode == 2 and "send_queue_bytes (1048576) must be at least max_message_size" in r.stderr, r
    r = run_parleyd(tmp_path, "--max-message-size", str(1048576 - 128))  # exactly fits
    assert r.returncode == 0, r.stderr
    r = run_parleyd(tmp_path, "--max-message-size", str(1048576 - 127))  # one byte over
    assert r.returncode == 2, r.stderr


def test_config_rate_burst_below_max_rooms_warns(tmp_path):
    r = run_parleyd(tmp_path, "--rate-burst", "257")  # 2 x 128 + 2 = 258
    assert r.returncode == 0 and "warning: rate_burst (257)" in r.stderr, r
    r = run_parleyd(tmp_path, "--rate-burst", "258")
    assert r.returncode == 0 and "warning" not in r.stderr, r


def test_max_size_publish_does_not_close_recipients(parley):
    # send_queue_bytes at its smallest for this max_message_size: one largest message still goes through.
    s = parley("--max-message-size", "65536", "--send-queue-bytes", str(65536 + 128), "--send-queue-messages", "1")
    a = s.client("alice", timeout=30)
    b = s.client("bob", timeout=30)
    a.join("r")
    b.join("r")
    base = len(('{"type":"message","room":"r","seq":1,"ts":1764158400123,"from":"alice","data":""}'))
    big = "m" * (65536 - base - 20)
    for i in range(5):
        a.ok("publish", room="r", data=big, echo=False)
        f = b.recv_json(timeout=30)
        assert f["type"] == "message" and f["seq"] == i + 1
    d = b.ok("history", room="r", limit=100)  # a page with one such message fits too
    assert len(d["messages"]) == 1 and d["more"] is True


def test_leave_during_catch_up_stops_the_replay_and_still_answers_the_join(parley):
    s = parley("--history-cache", "8")
    a = s.client("alice", timeout=60)
    a.join("r")
    publish_many(a, "r", 3000, make=lambda i: {"i": i, "pad": "v" * 1000})  # ~3 MB to replay
    b = s.client("bob", timeout=60, rcvbuf=4096)
    jid = b.send_cmd("join", room="r", since=0)
    lid = b.send_cmd("leave", room="r")
    frames = []
    while not (any(f.get("id") == jid for f in frames) and any(f.get("id") == lid for f in frames)):
        frames.append(b.recv_json())
    leave_at = [i for i, f in enumerate(frames) if f.get("id") == lid][0]
    join = [f for f in frames if f.get("id") == jid][0]
    assert frames[leave_at]["ok"] is True
    assert join["ok"] is True and join["data"]["recovered"] is False, join
    assert not any(f["type"] == "message" for f in frames[leave_at:]), "room messages after the leave reply"
    seqs = [f["seq"] for f in frames if f["type"] == "message"]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 3000
    a.ok("publish", room="r", data="after", echo=False)
    b.sync()
    assert not any(f["type"] == "message" for f in b.backlog)
