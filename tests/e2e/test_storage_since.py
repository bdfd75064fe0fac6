"""join with since: catch-up from history then live, with no gap and no duplicate."""

import threading
import time

from storagehelp import publish_many


def test_join_since_while_publishing_has_no_gap_no_duplicate_then_recovered_true(srv):
    pub = srv.client("pub", timeout=30)
    pub.join("r")
    first = publish_many(pub, "r", 300)
    assert first[-1] == 300

    total = 2000
    errors, done_seqs = [], []
    latest = [first[-1]]

    def keep_publishing():
        # Paced (about 1 ms apart) so publishing lasts well beyond the join below.
        try:
            for i in range(total):
                seq = pub.ok("publish", room="r", data={"live": i}, echo=False, skip=True)["seq"]
                done_seqs.append(seq)
                latest[0] = seq
                time.sleep(0.001)
        except Exception as e:
            errors.append(repr(e))

    t = threading.Thread(target=keep_publishing, daemon=True)
    t.start()
    time.sleep(0.3)  # let the publisher get going so the join lands mid-stream

    c = srv.client("late", timeout=30)
    since = max(0, latest[0] - 200)  # a few hundred behind
    jid = c.send_cmd("join", room="r", since=since)
    before_reply = []
    reply = None
    deadline = time.monotonic() + 60
    while reply is None:
        f = c.recv_json()
        if f["type"] == "reply" and f["id"] == jid:
            reply = f
        else:
            assert f["type"] == "message", f
            before_reply.append(f)
        assert time.monotonic() < deadline
    assert reply["ok"] is True, reply
    assert reply["data"]["recovered"] is True, reply
    rseq = reply["data"]["seq"]
    assert [m["seq"] for m in before_reply] == list(range(since + 1, rseq + 1)), \
        "catch-up before the reply must be exactly since+1..seq"

    t.join(timeout=120)
    assert not t.is_alive() and errors == []
    final = done_seqs[-1]
    assert done_seqs == list(range(301, 301 + total))
    after = []
    while len(after) < final - rseq:
        f = c.recv_json()
        assert f["type"] == "message", f
        after.append(f["seq"])
    assert after == list(range(rseq + 1, final + 1)), "live messages after the reply: gap or duplicate"
    assert rseq < final, "the join did not land mid-stream; test proved nothing about live hand-over"


def test_join_since_current_seq_sends_nothing_and_recovered_true(srv):
    a = srv.client("alice")
    a.join("r")
    publish_many(a, "r", 10)
    b = srv.client("bob")
    r = b.request("join", room="r", since=10)
    assert r["ok"] is True and r["data"]["seq"] == 10 and r["data"]["recovered"] is True, r


def test_join_since_0_replays_everything_in_order(srv):
    a = srv.client("alice")
    a.join("r")
    publish_many(a, "r", 25, make=lambda i: i)
    b = srv.client("bob")
    jid = b.send_cmd("join", room="r", since=0)
    msgs = [b.recv_json() for _ in range(25)]
    assert [m["seq"] for m in msgs] == list(range(1, 26))
    assert [m["data"] for m in msgs] == list(range(25))
    r = b.wait_reply(jid)
    assert r["data"]["recovered"] is True and r["data"]["seq"] == 25


def test_join_since_more_than_1000_missed_streams_them_all(srv):
    # No replay limit any more: the catch-up streams as the socket drains (see test_catchup.py).
    a = srv.client("alice", timeout=30)
    a.join("r")
    publish_many(a, "r", 1200)
    b = srv.client("bob", timeout=30)
    jid = b.send_cmd("join", room="r", since=100)
    msgs = [b.recv_json() for _ in range(1100)]
    assert [m["seq"] for m in msgs] == list(range(101, 1201))
    r = b.wait_reply(jid)
    assert r["ok"] is True and r["data"]["recovered"] is True, r
    assert r["data"]["seq"] == 1200


def test_join_since_negative_is_bad_request(srv):
    a = srv.client("alice")
    assert a.err("join", room="r", since=-1) == "bad_request"


def test_join_since_not_integer_is_bad_request(srv):
    a = srv.client("alice")
    assert a.err("join", room="r", since="5") == "bad_request"


def test_join_since_older_than_memory_cache_replays_from_disk(parley):
    s = parley("--history-cache", "16")
    a = s.client("alice", timeout=30)
    a.join("r")
    publish_many(a, "r", 500, make=lambda i: i)
    b = s.client("bob", timeout=30)
    jid = b.send_cmd("join", room="r", since=0)
    msgs = [b.recv_json() for _ in range(500)]
    assert [m["seq"] for m in msgs] == list(range(1, 501))
    assert [m["data"] for m in msgs] == list(range(500))
    r = b.wait_reply(jid)
    assert r["data"]["recovered"] is True and r["data"]["seq"] == 500


def test_join_since_after_restart_replays_stored_messages(parley):
    s1 = parley()
    a = s1.client("alice")
    a.join("r")
    publish_many(a, "r", 30, make=lambda i: i)
    assert s1.stop() == 0
    s2 = parley(data_dir=s1.data_dir)
    b = s2.client("bob")
    jid = b.send_cmd("join", room="r", since=20)
    msgs = [b.recv_json() for _ in range(10)]
    assert [(m["seq"], m["data"]) for m in msgs] == [(21 + i, 20 + i) for i in range(10)]
    r = b.wait_reply(jid)
    assert r["data"]["recovered"] is True and r["data"]["seq"] == 30
