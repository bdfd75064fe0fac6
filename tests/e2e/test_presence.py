"""Presence: batched joined/left frames for subscribers, and the presence command."""

import socket
import time

WINDOW = ("--presence-window-ms", "300")


def collect_presence(c, room, seconds):
    """Read frames for `seconds`; return the presence frames for `room` (others go to the backlog)."""
    out = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            f = c.next_json(timeout=left)
        except socket.timeout:
            break
        if f.get("type") == "presence" and f.get("room") == room:
            out.append(f)
        else:
            c.backlog.append(f)
    return out


def wait_presence(c, room, timeout=3.0):
    """The next presence frame for `room` (other frames go to the backlog)."""
    deadline = time.monotonic() + timeout
    while True:
        f = c.recv_json(timeout=max(0.001, deadline - time.monotonic()))
        if f.get("type") == "presence" and f.get("room") == room:
            return f
        c.backlog.append(f)


def assert_presence_shape(f):
    assert set(f) == {"type", "room", "joined", "left"}, f
    assert isinstance(f["joined"], list) and isinstance(f["left"], list), f
    assert f["joined"] or f["left"], "empty presence batch must not be sent: %r" % (f,)


def test_presence_subscriber_sees_its_own_join(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    f = wait_presence(a, "r")
    assert_presence_shape(f)
    assert f["joined"] == ["alice"] and f["left"] == []


def test_presence_other_user_join_is_reported(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    b = s.client("bob")
    b.join("r")
    f = wait_presence(a, "r")
    assert_presence_shape(f)
    assert f["joined"] == ["bob"] and f["left"] == []


def test_presence_other_user_leave_is_reported(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    joined = collect_presence(a, "r", 0.8)
    assert sorted(sum((f["joined"] for f in joined), [])) == ["alice", "bob"]
    b.ok("leave", room="r")
    f = wait_presence(a, "r")
    assert_presence_shape(f)
    assert f["joined"] == [] and f["left"] == ["bob"]


def test_presence_disconnect_is_reported_as_left(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    collect_presence(a, "r", 0.8)
    b.close_socket()
    f = wait_presence(a, "r")
    assert f["joined"] == [] and f["left"] == ["bob"]


def test_presence_joins_in_one_window_are_batched(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    for n in ("bob", "carol", "dave"):
        s.client(n).join("r")
    frames = collect_presence(a, "r", 1.0)
    assert len(frames) == 1, frames
    assert sorted(frames[0]["joined"]) == ["bob", "carol", "dave"] and frames[0]["left"] == []


def test_presence_join_and_leave_inside_one_window_appear_in_neither_list(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    carol = s.client("carol")
    bob = s.client("bob")
    # carol opens the window, bob comes and goes within a few ms of it.
    carol.join("r")
    bob.join("r")
    bob.ok("leave", room="r")
    frames = collect_presence(a, "r", 1.0)
    assert len(frames) == 1, frames
    assert frames[0]["joined"] == ["carol"] and frames[0]["left"] == [], frames


def test_presence_join_and_leave_alone_inside_one_window_sends_nothing(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    bob = s.client("bob")
    bob.join("r")
    bob.ok("leave", room="r")
    assert collect_presence(a, "r", 1.0) == []


def test_presence_not_sent_without_presence_true(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r")
    b = s.client("bob")
    b.join("r")
    time.sleep(0.5)
    b.ok("leave", room="r")
    time.sleep(0.5)
    a.sync()
    assert [f for f in a.backlog if f.get("type") == "presence"] == []


def test_presence_join_twice_with_presence_true_subscribes(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r")
    a.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    frames = collect_presence(a, "r", 1.0)
    assert "bob" in sum((f["joined"] for f in frames), []), frames


def test_presence_second_connection_of_user_is_not_a_join(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    b1 = s.client("bob")
    b1.join("r")
    collect_presence(a, "r", 0.8)
    b2 = s.client("bob")
    b2.join("r")
    assert collect_presence(a, "r", 0.8) == []
    b1.ok("leave", room="r")
    assert collect_presence(a, "r", 0.8) == []
    b2.ok("leave", room="r")
    frames = collect_presence(a, "r", 0.8)
    assert len(frames) == 1 and frames[0]["left"] == ["bob"] and frames[0]["joined"] == [], frames


def test_presence_rename_shows_old_name_left_and_new_name_joined(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    collect_presence(a, "r", 0.8)
    b.hello("robert")
    frames = collect_presence(a, "r", 1.0)
    joined = sum((f["joined"] for f in frames), [])
    left = sum((f["left"] for f in frames), [])
    assert joined == ["robert"] and left == ["bob"], frames


def test_presence_frames_only_for_subscribed_room(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r1", presence=True)
    a.join("r2")
    collect_presence(a, "r1", 0.8)
    b = s.client("bob")
    b.join("r2")
    time.sleep(0.8)
    a.sync()
    assert [f for f in a.backlog if f.get("type") == "presence"] == []


def test_presence_command_lists_users_with_conn_counts(srv):
    a1 = srv.client("alice")
    a1.join("r")
    a2 = srv.client("alice")
    a2.join("r")
    b = srv.client("bob")
    b.join("r")
    d = b.ok("presence", room="r", skip=True)
    assert set(d) == {"members"}
    got = sorted(d["members"], key=lambda m: m["user"])
    assert got == [{"user": "alice", "conns": 2}, {"user": "bob", "conns": 1}]


def test_presence_command_drops_user_whose_last_conn_left(srv):
    a = srv.client("alice")
    a.join("r")
    b = srv.client("bob")
    b.join("r")
    b.ok("leave", room="r")
    assert a.ok("presence", room="r")["members"] == [{"user": "alice", "conns": 1}]


def test_presence_command_when_not_member_is_not_member(srv):
    a = srv.client("alice")
    a.join("r")
    b = srv.client("bob")
    assert b.err("presence", room="r") == "not_member"


def test_presence_command_bad_room_is_bad_room(srv):
    a = srv.client("alice")
    assert a.err("presence", room="no such") == "bad_room"


def test_presence_join_again_with_presence_false_unsubscribes(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    a.join("r", presence=False)
    s.client("bob").join("r")
    assert collect_presence(a, "r", 1.0) == []


def test_presence_non_boolean_presence_flag_is_bad_request(srv):
    a = srv.client("alice")
    assert a.err("join", room="r", presence="yes") == "bad_request"
