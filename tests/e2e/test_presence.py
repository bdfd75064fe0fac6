"""Presence: batched joined/left frames for subscribers, and the presence command.

None of these tests depends on how long a window lasts on a loaded machine. Frames are waited for by
content, not collected for a fixed time. "Nothing was sent" is shown with a sentinel: a user who joins
after the action; once the sentinel's join arrives, every batch holding the action has been sent. Changes
that must fall in one window are sent back to back (already connected, without waiting for replies) with
a 2 s window, far longer than the few milliseconds they take.
"""

import time

WINDOW = ("--presence-window-ms", "300")
LONG_WINDOW = ("--presence-window-ms", "2000")
TIMEOUT = 15.0  # generous: a loaded machine may be slow, but the frames must come


def wait_presence(c, room, timeout=TIMEOUT):
    """The next presence frame for `room` (other frames go to the backlog)."""
    deadline = time.monotonic() + timeout
    for i, f in enumerate(c.backlog):
        if f.get("type") == "presence" and f.get("room") == room:
            return c.backlog.pop(i)
    while True:
        f = c.recv_json(timeout=max(0.001, deadline - time.monotonic()))
        if f.get("type") == "presence" and f.get("room") == room:
            return f
        c.backlog.append(f)


def joined_of(frames):
    return sum((f["joined"] for f in frames), [])


def left_of(frames):
    return sum((f["left"] for f in frames), [])


def presence_until(c, room, pred, timeout=TIMEOUT):
    """Presence frames for `room`, read until pred(frames) holds."""
    frames = []
    deadline = time.monotonic() + timeout
    while not pred(frames):
        f = wait_presence(c, room, timeout=max(0.001, deadline - time.monotonic()))
        assert_presence_shape(f)
        frames.append(f)
    return frames


def until_joined(c, room, *names):
    return presence_until(c, room, lambda fs: set(names) <= set(joined_of(fs)))


def sentinel(s, room, name):
    """A user joining after an action; returns the client (keep it connected)."""
    z = s.client(name)
    z.join(room)
    return z


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
    until_joined(a, "r", "alice", "bob")
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
    until_joined(a, "r", "alice", "bob")
    b.close_socket()
    f = wait_presence(a, "r")
    assert f["joined"] == [] and f["left"] == ["bob"]


def test_presence_joins_in_one_window_are_batched(parley):
    s = parley(*LONG_WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    others = [s.client(n) for n in ("bob", "carol", "dave")]
    for c in others:
        c.send_cmd("join", room="r")
    frames = until_joined(a, "r", "bob", "carol", "dave")
    assert len(frames) == 1, frames
    assert sorted(frames[0]["joined"]) == ["bob", "carol", "dave"] and frames[0]["left"] == []


def test_presence_join_and_leave_inside_one_window_appear_in_neither_list(parley):
    s = parley(*LONG_WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    carol = s.client("carol")
    bob = s.client("bob")
    # carol opens the window, bob comes and goes right after it.
    carol.send_cmd("join", room="r")
    bob.send_cmd("join", room="r")
    bob.send_cmd("leave", room="r")
    frames = until_joined(a, "r", "carol")
    assert len(frames) == 1, frames
    assert frames[0]["joined"] == ["carol"] and frames[0]["left"] == [], frames
    z = sentinel(s, "r", "zed")
    frames = until_joined(a, "r", "zed")
    assert "bob" not in joined_of(frames) + left_of(frames), frames
    z.sync()


def test_presence_join_and_leave_alone_inside_one_window_sends_nothing(parley):
    s = parley(*LONG_WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    wait_presence(a, "r")
    bob = s.client("bob")
    bob.send_cmd("join", room="r")
    bob.send_cmd("leave", room="r")
    bob.sync()
    z = sentinel(s, "r", "zed")
    frames = until_joined(a, "r", "zed")
    assert joined_of(frames) == ["zed"] and left_of(frames) == [], frames
    z.sync()


def test_presence_not_sent_without_presence_true(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r")
    w = s.client("watcher")
    w.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    until_joined(w, "r", "bob")
    b.ok("leave", room="r")
    presence_until(w, "r", lambda fs: "bob" in left_of(fs))
    # Every batch a could have had went out with w's; its frames would be queued before this reply.
    a.sync()
    assert [f for f in a.backlog if f.get("type") == "presence"] == []


def test_presence_join_twice_with_presence_true_subscribes(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r")
    a.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    until_joined(a, "r", "bob")


def test_presence_second_connection_of_user_is_not_a_join(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    b1 = s.client("bob")
    b1.join("r")
    until_joined(a, "r", "alice", "bob")
    b2 = s.client("bob")
    b2.join("r")
    z1 = sentinel(s, "r", "zed1")
    frames = until_joined(a, "r", "zed1")
    assert "bob" not in joined_of(frames) + left_of(frames), frames
    b1.ok("leave", room="r")
    z2 = sentinel(s, "r", "zed2")
    frames = until_joined(a, "r", "zed2")
    assert "bob" not in joined_of(frames) + left_of(frames), frames
    b2.ok("leave", room="r")
    frames = presence_until(a, "r", lambda fs: "bob" in left_of(fs))
    assert len(frames) == 1 and frames[0]["left"] == ["bob"] and frames[0]["joined"] == [], frames
    z1.sync()
    z2.sync()


def test_presence_rename_shows_old_name_left_and_new_name_joined(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r", presence=True)
    b = s.client("bob")
    b.join("r")
    until_joined(a, "r", "alice", "bob")
    b.hello("robert")
    frames = presence_until(a, "r", lambda fs: "robert" in joined_of(fs) and "bob" in left_of(fs))
    assert joined_of(frames) == ["robert"] and left_of(frames) == ["bob"], frames


def test_presence_frames_only_for_subscribed_room(parley):
    s = parley(*WINDOW)
    a = s.client("alice")
    a.join("r1", presence=True)
    a.join("r2")
    until_joined(a, "r1", "alice")
    w = s.client("watcher")
    w.join("r2", presence=True)
    b = s.client("bob")
    b.join("r2")
    until_joined(w, "r2", "bob")
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
    w = s.client("watcher")
    w.join("r", presence=True)
    s.client("bob").join("r")
    until_joined(w, "r", "bob")
    a.sync()
    assert [f for f in a.backlog if f.get("type") == "presence"] == []


def test_presence_non_boolean_presence_flag_is_bad_request(srv):
    a = srv.client("alice")
    assert a.err("join", room="r", presence="yes") == "bad_request"
