"""publish with "key": retries without duplicates (issue 10, point 6).

Within idempotency_window (per room, across restarts and kill -9), a second publish with the same key
is neither stored nor delivered again and gets the first one's reply.
"""

import signal
import time

from storagehelp import read_all_history


def history_of(srv, room="r"):
    """Every stored message of room, read by a fresh member."""
    c = srv.client("reader")
    c.join(room)
    return read_all_history(c, room)


def two(srv, room="r"):
    a = srv.client("alice")
    b = srv.client("bob")
    a.join(room)
    b.join(room)
    return a, b


def test_duplicate_within_window_delivered_once_same_seq(parley):
    srv = parley()
    a, b = two(srv)
    s1 = a.ok("publish", room="r", data="hi", key="k-1", echo=False)["seq"]
    m = b.next_json()
    assert m["type"] == "message" and m["seq"] == s1 and m["data"] == "hi"
    # The retry (even with other data) is answered from the first; nobody receives it.
    assert a.ok("publish", room="r", data="hi again", key="k-1", echo=False) == {"seq": s1}
    assert a.ok("publish", room="r", data="hi", key="k-1") == {"seq": s1}  # echo on: no echo either
    a.assert_nothing_pending()
    b.sync()
    assert b.backlog == []
    # Other keys and no key are new messages.
    assert a.ok("publish", room="r", data="x", key="k-2", echo=False)["seq"] == s1 + 1
    assert a.ok("publish", room="r", data="y", echo=False)["seq"] == s1 + 2
    assert [m["data"] for m in history_of(srv)] == ["hi", "x", "y"]


def test_duplicate_while_first_is_still_queued_durable_waits_for_commit(parley):
    srv = parley("--flush-interval-ms", "5000")
    a, b = two(srv)
    s1 = a.ok("publish", room="r", data="q", key="kq", echo=False)["seq"]
    # The first is only queued (5 s flush interval); a durable retry waits for its commit, which it
    # asks for at once, and says durable.
    t0 = time.monotonic()
    assert a.ok("publish", room="r", data="q", key="kq", durable=True, echo=False) == {"seq": s1, "durable": True}
    assert time.monotonic() - t0 < 4
    assert b.next_json()["seq"] == s1
    b.sync()
    assert b.backlog == []
    assert len(history_of(srv)) == 1


def test_duplicate_of_durable_publish_gets_durable_reply(parley):
    srv = parley()
    a, _ = two(srv)
    r1 = a.ok("publish", room="r", data="d", key="kd", durable=True, echo=False)
    assert r1 == {"seq": 1, "durable": True}
    assert a.ok("publish", room="r", data="d", key="kd", durable=True, echo=False) == r1
    assert a.ok("publish", room="r", data="d", key="kd", echo=False) == {"seq": 1}


def test_same_key_in_two_rooms_is_two_messages(parley):
    srv = parley()
    a = srv.client("alice")
    b = srv.client("bob")
    for room in ("x", "y"):
        a.join(room)
        b.join(room)
    assert a.ok("publish", room="x", data=1, key="same", echo=False)["seq"] == 1
    assert a.ok("publish", room="y", data=2, key="same", echo=False)["seq"] == 1
    got = [b.next_json() for _ in range(2)]
    assert sorted((m["room"], m["data"]) for m in got) == [("x", 1), ("y", 2)]


def test_duplicate_after_clean_restart(parley):
    s1 = parley()
    a = s1.client("alice")
    a.join("r")
    seq = a.ok("publish", room="r", data="once", key="restart-key", echo=False)["seq"]
    assert s1.stop(signal.SIGTERM) == 0
    s2 = parley(data_dir=s1.data_dir)
    a2, b2 = two(s2)
    assert a2.ok("publish", room="r", data="once", key="restart-key", echo=False) == {"seq": seq}
    b2.sync()
    assert b2.backlog == []
    assert [m["data"] for m in history_of(s2)] == ["once"]
    # and a new key continues after it
    assert a2.ok("publish", room="r", data="two", key="other", echo=False)["seq"] == seq + 1


def test_durable_acked_then_kill_9_then_retry_is_not_stored_again(parley):
    s1 = parley("--flush-interval-ms", "10000")
    a = s1.client("alice")
    a.join("r")
    r1 = a.ok("publish", room="r", data="important", key="crash-key", durable=True, echo=False)
    s1.kill9()
    s2 = parley(data_dir=s1.data_dir)
    a2, b2 = two(s2)
    # The client never saw the reply (say); it retries after reconnecting.
    assert a2.ok("publish", room="r", data="important", key="crash-key", durable=True, echo=False) == r1
    b2.sync()
    assert b2.backlog == []
    assert [(m["seq"], m["data"]) for m in history_of(s2)] == [(r1["seq"], "important")]


def test_key_reused_after_window_is_a_new_message(parley):
    srv = parley("--idempotency-window", "1")
    a, b = two(srv)
    s1 = a.ok("publish", room="r", data="first", key="kw", echo=False)["seq"]
    assert a.ok("publish", room="r", data="first", key="kw", echo=False)["seq"] == s1
    time.sleep(1.2)
    s2 = a.ok("publish", room="r", data="later", key="kw", echo=False)["seq"]
    assert s2 == s1 + 1
    assert [m["data"] for m in (b.next_json(), b.next_json())] == ["first", "later"]


def test_key_length_limits(parley):
    srv = parley()
    a, _ = two(srv)
    k64 = "k" * 64
    s = a.ok("publish", room="r", data=1, key=k64, echo=False)["seq"]
    assert a.ok("publish", room="r", data=1, key=k64, echo=False)["seq"] == s
    assert a.err("publish", room="r", data=1, key="k" * 65, echo=False) == "bad_request"
    assert a.err("publish", room="r", data=1, key="", echo=False) == "bad_request"
    # bytes, not characters: 32 x "é" is 64 bytes, 33 is 66
    assert a.ok("publish", room="r", data=1, key="é" * 32, echo=False)["seq"] == s + 1
    assert a.err("publish", room="r", data=1, key="é" * 33, echo=False) == "bad_request"
    # a key that is too long stored nothing
    assert a.ok("publish", room="r", data=2, echo=False)["seq"] == s + 2


def test_key_must_be_a_string(parley):
    srv = parley()
    a, _ = two(srv)
    for bad in (1, None, True, ["k"], {"k": 1}):
        r = a.request("publish", room="r", data=1, key=bad, echo=False)
        assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
        assert "key" in r["error"]["message"]
    assert a.ok("publish", room="r", data=1, echo=False)["seq"] == 1  # none was stored


def test_key_on_volatile_publish_is_refused(parley):
    srv = parley()
    a, _ = two(srv)
    assert a.err("publish", room="r", data=1, key="v", persist=False) == "bad_request"
