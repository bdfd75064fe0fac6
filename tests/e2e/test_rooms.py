"""join / leave: replies, membership counts, room-name validation, per-connection room limit."""

import time

import pytest

ROOM_CHARS = "abcXYZ019_-.:@"


def test_join_new_room_reply_has_room_seq0_members1(srv):
    c = srv.client("alice")
    assert c.join("lobby") == {"room": "lobby", "seq": 0, "members": 1}


def test_join_members_counts_distinct_users(srv):
    a = srv.client("alice")
    a.join("lobby")
    b = srv.client("bob")
    assert b.join("lobby")["members"] == 2


def test_join_second_connection_of_same_user_does_not_add_member(srv):
    a1 = srv.client("alice")
    a1.join("lobby")
    a2 = srv.client("alice")
    assert a2.join("lobby")["members"] == 1


def test_join_reply_seq_is_latest_message_seq(srv):
    a = srv.client("alice")
    a.join("lobby")
    last = None
    for i in range(3):
        last = a.ok("publish", room="lobby", data=i, echo=False)["seq"]
    b = srv.client("bob")
    assert b.join("lobby")["seq"] == last


def test_join_twice_is_not_an_error(srv):
    c = srv.client("alice")
    c.join("lobby")
    assert c.join("lobby") == {"room": "lobby", "seq": 0, "members": 1}


def test_leave_reply_has_room(srv):
    c = srv.client("alice")
    c.join("lobby")
    assert c.ok("leave", room="lobby") == {"room": "lobby"}


def test_leave_when_not_member_is_not_member(srv):
    c = srv.client("alice")
    assert c.err("leave", room="lobby") == "not_member"


def test_leave_twice_second_is_not_member(srv):
    c = srv.client("alice")
    c.join("lobby")
    c.ok("leave", room="lobby")
    assert c.err("leave", room="lobby") == "not_member"


def test_leave_reduces_member_count(srv):
    a, b = srv.client("alice"), srv.client("bob")
    a.join("lobby")
    b.join("lobby")
    b.ok("leave", room="lobby")
    c = srv.client("carol")
    assert c.join("lobby")["members"] == 2


def test_disconnect_leaves_rooms(srv):
    a, b = srv.client("alice"), srv.client("bob")
    a.join("lobby")
    b.join("lobby")
    b.close_socket()
    c = srv.client("carol")
    # The server notices the hang-up asynchronously: poll briefly, bounded.
    for _ in range(50):
        n = c.join("lobby")["members"]
        if n == 2:
            break
        c.ok("leave", room="lobby")
        time.sleep(0.05)
    assert n == 2


def test_publish_after_leave_is_not_member(srv):
    c = srv.client("alice")
    c.join("lobby")
    c.ok("leave", room="lobby")
    assert c.err("publish", room="lobby", data=1) == "not_member"


@pytest.mark.parametrize("room", [
    pytest.param("", id="empty"),
    pytest.param("a" * 129, id="129_bytes"),
    pytest.param("a b", id="space"),
    pytest.param("a/b", id="slash"),
    pytest.param("café", id="unicode"),
    pytest.param("日本", id="cjk"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a#b", id="hash"),
    pytest.param("a*b", id="star"),
])
def test_join_bad_room_name_is_bad_room(srv, room):
    c = srv.client("alice")
    assert c.err("join", room=room) == "bad_room"


@pytest.mark.parametrize("room", [
    pytest.param(7, id="number"),
    pytest.param(None, id="null"),
    pytest.param(["lobby"], id="array"),
])
def test_join_non_string_room_is_bad_request(srv, room):
    c = srv.client("alice")
    assert c.err("join", room=room) == "bad_request"


def test_join_missing_room_is_bad_request(srv):
    c = srv.client("alice")
    assert c.err("join") == "bad_request"


def test_join_128_byte_room_with_all_allowed_chars_is_ok(srv):
    room = (ROOM_CHARS * 10)[:128]
    assert len(room) == 128
    c = srv.client("alice")
    assert c.join(room) == {"room": room, "seq": 0, "members": 1}


def test_leave_bad_room_name_is_bad_room(srv):
    c = srv.client("alice")
    assert c.err("leave", room="a b") == "bad_room"


def test_publish_bad_room_name_is_bad_room(srv):
    c = srv.client("alice")
    assert c.err("publish", room="a/b", data=1) == "bad_room"


def test_join_fourth_room_with_max_rooms_3_is_too_many_rooms(parley):
    s = parley("--max-rooms", "3")
    c = s.client("alice")
    for r in ("r1", "r2", "r3"):
        c.join(r)
    assert c.err("join", room="r4") == "too_many_rooms"


def test_rejoin_existing_room_at_max_rooms_is_ok(parley):
    s = parley("--max-rooms", "3")
    c = s.client("alice")
    for r in ("r1", "r2", "r3"):
        c.join(r)
    assert c.join("r2")["room"] == "r2"


def test_leave_frees_a_room_slot(parley):
    s = parley("--max-rooms", "3")
    c = s.client("alice")
    for r in ("r1", "r2", "r3"):
        c.join(r)
    c.ok("leave", room="r1")
    assert c.join("r4")["room"] == "r4"


def test_max_rooms_is_per_connection(parley):
    s = parley("--max-rooms", "3")
    a = s.client("alice")
    for r in ("r1", "r2", "r3"):
        a.join(r)
    b = s.client("alice")
    for r in ("r4", "r5", "r6"):
        b.join(r)
    assert a.err("join", room="r7") == "too_many_rooms"
