"""history: paging with before/limit, the more flag, ordering, membership."""

import pytest

from storagehelp import publish_many


@pytest.fixture
def room120(srv):
    """alice in room r with 120 stored messages, and the message frames bob saw live."""
    a = srv.client("alice")
    b = srv.client("bob")
    a.join("r")
    b.join("r")
    seqs = publish_many(a, "r", 120, make=lambda i: {"i": i})
    live = [b.next_json() for _ in range(120)]
    assert seqs == list(range(1, 121))
    return a, live


def test_history_latest_page_default_limit_50_oldest_first(room120):
    a, live = room120
    d = a.ok("history", room="r")
    assert set(d) == {"messages", "more"}
    assert [m["seq"] for m in d["messages"]] == list(range(71, 121))
    assert d["more"] is True


def test_history_messages_equal_the_live_message_frames(room120):
    a, live = room120
    d = a.ok("history", room="r", limit=100)
    assert d["messages"] == live[20:]


def test_history_before_and_limit_page_backwards(room120):
    a, _ = room120
    d = a.ok("history", room="r", before=71, limit=50)
    assert [m["seq"] for m in d["messages"]] == list(range(21, 71)) and d["more"] is True
    d = a.ok("history", room="r", before=21, limit=50)
    assert [m["seq"] for m in d["messages"]] == list(range(1, 21)) and d["more"] is False


def test_history_more_false_when_page_ends_exactly_at_first_message(room120):
    a, _ = room120
    d = a.ok("history", room="r", before=11, limit=10)
    assert [m["seq"] for m in d["messages"]] == list(range(1, 11))
    assert d["more"] is False


def test_history_before_1_is_empty(room120):
    a, _ = room120
    assert a.ok("history", room="r", before=1) == {"messages": [], "more": False}


def test_history_limit_100_is_allowed(room120):
    a, _ = room120
    d = a.ok("history", room="r", limit=100)
    assert [m["seq"] for m in d["messages"]] == list(range(21, 121)) and d["more"] is True


def test_history_data_is_intact(room120):
    a, _ = room120
    d = a.ok("history", room="r", before=4, limit=3)
    assert [m["data"] for m in d["messages"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert all(m["type"] == "message" and m["room"] == "r" and m["from"] == "alice" for m in d["messages"])


@pytest.mark.parametrize("limit", [0, 101, -1, 1.5, "10"])
def test_history_limit_out_of_range_is_bad_request(srv, limit):
    a = srv.client("alice")
    a.join("r")
    assert a.err("history", room="r", limit=limit) == "bad_request"


def test_history_empty_room(srv):
    a = srv.client("alice")
    a.join("r")
    assert a.ok("history", room="r") == {"messages": [], "more": False}


def test_history_when_not_member_is_not_member(srv):
    a = srv.client("alice")
    a.join("r")
    a.ok("publish", room="r", data=1, echo=False)
    b = srv.client("bob")
    assert b.err("history", room="r") == "not_member"


def test_history_excludes_volatile_messages(srv):
    a = srv.client("alice")
    a.join("r")
    a.ok("publish", room="r", data="kept", echo=False)
    a.ok("publish", room="r", data="volatile", echo=False, persist=False)
    a.ok("publish", room="r", data="kept2", echo=False)
    d = a.ok("history", room="r")
    assert [m["data"] for m in d["messages"]] == ["kept", "kept2"]


def test_history_is_per_room(srv):
    a = srv.client("alice")
    a.join("r1")
    a.join("r2")
    a.ok("publish", room="r1", data="one", echo=False)
    a.ok("publish", room="r2", data="two", echo=False)
    d = a.ok("history", room="r2")
    assert [(m["room"], m["data"]) for m in d["messages"]] == [("r2", "two")]


def test_history_beyond_the_memory_cache_is_read_from_disk(parley):
    s = parley("--history-cache", "16")
    a = s.client("alice")
    a.join("r")
    publish_many(a, "r", 300, make=lambda i: i)
    d = a.ok("history", room="r", before=101, limit=100)
    assert [m["data"] for m in d["messages"]] == list(range(0, 100))
    assert d["more"] is False


@pytest.mark.parametrize("before", [-1, 1.5, "10", None])
def test_history_before_wrong_type_is_bad_request(srv, before):
    a = srv.client("alice")
    a.join("r")
    assert a.err("history", room="r", before=before) == "bad_request"


def test_more_is_false_when_retention_pruned_everything_older(parley):
    # The newest page comes from the room's memory cache, but retention removed everything older from
    # disk: "more" must say so (it used to be true whenever the page did not start at seq 1).
    import time
    from storagehelp import publish_many
    s = parley("--retain-messages", "10")
    a = s.client("alice", timeout=30)
    a.join("r")
    publish_many(a, "r", 30)
    deadline = time.monotonic() + 30
    while a.ok("history", room="r", before=21, limit=10)["messages"]:
        assert time.monotonic() < deadline, "retention never pruned seqs 11..20"
        time.sleep(0.2)
    d = a.ok("history", room="r", limit=10)
    assert [m["seq"] for m in d["messages"]] == list(range(21, 31))
    assert d["more"] is False, d
    d = a.ok("history", room="r", limit=5)
    assert [m["seq"] for m in d["messages"]] == list(range(26, 31)) and d["more"] is True
