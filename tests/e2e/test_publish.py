"""publish: fan-out, echo, persist, seq, validation, ordering."""

import time

from conftest import now_ms


def room_of(s, names, room="r"):
    cs = [s.client(n) for n in names]
    for c in cs:
        c.join(room)
    return cs


def test_publish_reply_has_seq(srv):
    (a,) = room_of(srv, ["alice"])
    d = a.ok("publish", room="r", data="hi", echo=False)
    assert set(d) == {"seq"} and isinstance(d["seq"], int) and d["seq"] >= 1


def test_publish_first_seq_in_new_room_is_1(srv):
    (a,) = room_of(srv, ["alice"])
    assert a.ok("publish", room="r", data="hi", echo=False)["seq"] == 1


def test_publish_seq_increments_by_one(srv):
    (a,) = room_of(srv, ["alice"])
    seqs = [a.ok("publish", room="r", data=i, echo=False)["seq"] for i in range(5)]
    assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_publish_seq_is_per_room(srv):
    a = srv.client("alice")
    a.join("r1")
    a.join("r2")
    a.ok("publish", room="r1", data=1, echo=False)
    a.ok("publish", room="r1", data=2, echo=False)
    assert a.ok("publish", room="r2", data=3, echo=False)["seq"] == 1


def test_publish_message_frame_shape(srv):
    a, b = room_of(srv, ["alice", "bob"])
    t0 = now_ms()
    seq = a.ok("publish", room="r", data={"text": "hi", "n": [1, 2.5, None, True]}, skip=True)["seq"]
    m = b.next_json()
    assert set(m) == {"type", "room", "seq", "ts", "from", "data"}, m
    assert m["type"] == "message" and m["room"] == "r" and m["seq"] == seq and m["from"] == "alice"
    assert m["data"] == {"text": "hi", "n": [1, 2.5, None, True]}
    assert abs(m["ts"] - t0) < 5000


def test_publish_fans_out_to_every_member(srv):
    a, b, c = room_of(srv, ["alice", "bob", "carol"])
    seq = a.ok("publish", room="r", data="x", skip=True)["seq"]
    for cl in (b, c):
        m = cl.next_json()
        assert m["type"] == "message" and m["seq"] == seq and m["data"] == "x"


def test_publish_reaches_each_connection_of_a_user(srv):
    a, b1, b2 = room_of(srv, ["alice", "bob", "bob"])
    a.ok("publish", room="r", data="x", echo=False)
    assert b1.next_json()["data"] == "x"
    assert b2.next_json()["data"] == "x"


def test_publish_not_delivered_to_non_member(srv):
    a, b = room_of(srv, ["alice", "bob"])
    d = srv.client("dave")
    d.join("other")
    a.ok("publish", room="r", data="x", skip=True)
    assert b.next_json()["data"] == "x"
    d.sync()
    assert d.backlog == []


def test_publish_not_delivered_after_leave(srv):
    a, b = room_of(srv, ["alice", "bob"])
    b.ok("leave", room="r")
    a.ok("publish", room="r", data="x", skip=True)
    b.sync()
    assert b.backlog == []


def test_publisher_copy_arrives_before_reply(srv):
    (a,) = room_of(srv, ["alice"])
    cid = a.send_cmd("publish", room="r", data="mine")
    m = a.next_json()
    assert m["type"] == "message" and m["data"] == "mine" and m["from"] == "alice", m
    r = a.wait_reply(cid)
    assert r["ok"] is True and r["data"]["seq"] == m["seq"]


def test_publish_echo_false_excludes_publisher(srv):
    a, b = room_of(srv, ["alice", "bob"])
    cid = a.send_cmd("publish", room="r", data="x", echo=False)
    r = a.next_json()
    assert r["type"] == "reply" and r["id"] == cid and r["ok"] is True, r
    assert b.next_json()["data"] == "x"
    a.assert_nothing_pending(0.3)


def test_publish_echo_false_still_reaches_publishers_other_connection(srv):
    a1, a2 = room_of(srv, ["alice", "alice"])
    a1.ok("publish", room="r", data="x", echo=False)
    assert a2.next_json()["data"] == "x"


def test_publish_persist_false_reply_has_no_seq(srv):
    (a,) = room_of(srv, ["alice"])
    assert a.ok("publish", room="r", data="v", persist=False, echo=False) == {}


def test_publish_persist_false_message_has_no_seq(srv):
    a, b = room_of(srv, ["alice", "bob"])
    a.ok("publish", room="r", data="v", persist=False, skip=True)
    m = b.next_json()
    assert m["type"] == "message" and m["data"] == "v" and "seq" not in m, m
    assert set(m) == {"type", "room", "ts", "from", "data"}


def test_publish_persist_false_does_not_advance_seq(srv):
    (a,) = room_of(srv, ["alice"])
    s1 = a.ok("publish", room="r", data=1, echo=False)["seq"]
    a.ok("publish", room="r", data=2, echo=False, persist=False)
    assert a.ok("publish", room="r", data=3, echo=False)["seq"] == s1 + 1


def test_publish_when_not_member_is_not_member(srv):
    a = srv.client("alice")
    srv.client("bob").join("r")
    assert a.err("publish", room="r", data=1) == "not_member"


def test_publish_missing_data_is_bad_request(srv):
    (a,) = room_of(srv, ["alice"])
    assert a.err("publish", room="r") == "bad_request"


def test_publish_null_data_is_allowed(srv):
    a, b = room_of(srv, ["alice", "bob"])
    a.ok("publish", room="r", data=None, echo=False)
    m = b.next_json()
    assert "data" in m and m["data"] is None


def test_publish_missing_room_is_bad_request(srv):
    (a,) = room_of(srv, ["alice"])
    assert a.err("publish", data=1) == "bad_request"


def test_publish_non_boolean_echo_is_bad_request(srv):
    (a,) = room_of(srv, ["alice"])
    assert a.err("publish", room="r", data=1, echo="no") == "bad_request"


def test_publish_unicode_and_escapes_survive(srv):
    a, b = room_of(srv, ["alice", "bob"])
    data = {"s": "héllo \u2603 \U0001F600 \"q\" \\ \n\t \u0001", "k\u00e9y": -0.5}
    a.ok("publish", room="r", data=data, echo=False)
    assert b.next_json()["data"] == data


def test_publish_1000_messages_arrive_in_order(srv):
    a, b = room_of(srv, ["alice", "bob"])
    n, window = 1000, 100
    seqs, got = [], []
    deadline = time.monotonic() + 60
    for base in range(0, n, window):
        ids = [a.send_cmd("publish", room="r", data={"i": base + i, "pad": "p" * 50}, echo=False)
               for i in range(window)]
        for cid in ids:
            r = a.wait_reply(cid)
            assert r["ok"] is True, r
            seqs.append(r["data"]["seq"])
        for _ in range(window):
            m = b.next_json()
            assert m["type"] == "message", m
            got.append(m)
        assert time.monotonic() < deadline
    assert seqs == list(range(seqs[0], seqs[0] + n))
    assert [m["seq"] for m in got] == seqs
    assert [m["data"] for m in got] == [{"i": i, "pad": "p" * 50} for i in range(n)]
