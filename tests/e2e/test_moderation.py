"""Moderation over the protocol: delete (own, other's, unknown), tombstones in history and replays (from
the cache, from disk, across a restart), the live `deleted` frame; bans (4003, refused at hello and
token, restart, lift, expiry)."""

import base64
import glob
import hashlib
import hmac
import json
import os
import time

import pytest

SECRET = b"a-moderation-test-secret-that-is-long-enough-42"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub, ttl=300, **extra):
    claims = {"sub": sub, "exp": int(time.time()) + ttl}
    claims.update(extra)
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    mac = hmac.new(SECRET, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64(mac)


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "secret"
    p.write_bytes(SECRET + b"\n")
    return str(p)


def tsrv(parley, secret_file, *flags, data_dir=None):
    return parley("--auth", "token", "--auth-secret-file", secret_file, *flags, data_dir=data_dir)


def tclient(srv, sub, mod=False):
    c = srv.client()
    extra = {"mod": True} if mod else {}
    assert c.ok("hello", token=token(sub, **extra)) == {"user": sub}
    return c


def next_of_type(c, type_, timeout=5.0):
    """The next frame of that type (others go to the backlog)."""
    for i, f in enumerate(c.backlog):
        if f.get("type") == type_:
            return c.backlog.pop(i)
    deadline = time.monotonic() + timeout
    while True:
        f = c.recv_json(timeout=max(0.001, deadline - time.monotonic()))
        if f.get("type") == type_:
            return f
        c.backlog.append(f)


def publish(c, room, text, **fields):
    return c.ok("publish", room=room, data={"text": text}, echo=False, skip=True, **fields)["seq"]


def file_bytes(data_dir):
    out = b""
    for p in glob.glob(os.path.join(data_dir, "parley.db*")):
        with open(p, "rb") as f:
            out += f.read()
    return out


# ------------------------------------------------------------------------------------------ delete


def test_delete_own_message_tombstone_live_and_in_history(parley):
    srv = parley()
    alice, bob = srv.client("alice"), srv.client("bob")
    alice.join("r")
    bob.join("r")
    seqs = [publish(alice, "r", "m%d" % i) for i in range(3)]
    assert seqs == [1, 2, 3]
    for _ in range(3):
        next_of_type(bob, "message")
    d = alice.ok("delete", room="r", seq=2, skip=True)
    assert d == {"room": "r", "seq": 2}
    for c in (alice, bob):
        assert next_of_type(c, "deleted") == {"type": "deleted", "room": "r", "seq": 2}
    # From the room's cache:
    msgs = bob.ok("history", room="r", skip=True)["messages"]
    assert [m["seq"] for m in msgs] == [1, 2, 3]
    assert msgs[1] == {"type": "message", "room": "r", "seq": 2, "deleted": True}
    assert msgs[0]["data"] == {"text": "m0"} and msgs[2]["data"] == {"text": "m2"}
    # A join with since replays the tombstone from the cache too.
    carol = srv.client("carol")
    carol.ok("join", room="r", since=0, skip=True)
    got = [f for f in carol.backlog if f.get("type") == "message"]
    assert [f["seq"] for f in got] == [1, 2, 3]
    assert got[1] == {"type": "message", "room": "r", "seq": 2, "deleted": True}


def test_delete_other_users_message_is_forbidden(parley):
    srv = parley()
    alice, bob = srv.client("alice"), srv.client("bob")
    alice.join("r")
    bob.join("r")
    seq = publish(alice, "r", "mine")
    assert bob.err("delete", room="r", seq=seq, skip=True) == "forbidden"
    # Still there, for everyone.
    assert bob.ok("history", room="r", skip=True)["messages"][0]["data"] == {"text": "mine"}


def test_delete_unknown_seq_is_not_found(parley):
    srv = parley()
    alice = srv.client("alice")
    alice.join("r")
    assert alice.err("delete", room="r", seq=1) == "not_found"           # empty room
    publish(alice, "r", "one")
    assert alice.err("delete", room="r", seq=2, skip=True) == "not_found"  # one past the last
    alice.ok("publish", room="r", data="volatile", persist=False, echo=False)
    assert alice.err("delete", room="r", seq=2) == "not_found"           # volatile: no seq
    assert alice.err("delete", room="r", seq=0) == "bad_request"
    assert alice.err("delete", room="r") == "bad_request"
    assert alice.err("delete", room="other", seq=1) == "not_member"


def test_delete_pruned_message_is_not_found_from_disk(parley):
    srv = parley("--retain-messages", "2", "--history-cache", "0")
    alice = srv.client("alice")
    alice.join("r")
    for i in range(5):
        publish(alice, "r", "m%d" % i)
    deadline = time.monotonic() + 10
    while alice.ok("history", room="r", skip=True, before=3)["messages"]:
        assert time.monotonic() < deadline, "retention did not prune"
        time.sleep(0.2)
    # seq 1 was handed out and then pruned: only the disk can tell.
    assert alice.err("delete", room="r", seq=1, skip=True) == "not_found"


def test_delete_twice_is_ok(parley):
    srv = parley()
    alice = srv.client("alice")
    alice.join("r")
    publish(alice, "r", "x")
    alice.ok("delete", room="r", seq=1, skip=True)
    alice.ok("delete", room="r", seq=1, skip=True)


def test_self_delete_can_be_turned_off(parley):
    srv = parley("--allow-self-delete", "0")
    alice = srv.client("alice")
    alice.join("r")
    publish(alice, "r", "x")
    assert alice.err("delete", room="r", seq=1, skip=True) == "forbidden"


def test_moderator_deletes_anyones_message(parley, secret_file):
    srv = tsrv(parley, secret_file)
    alice, mod = tclient(srv, "alice"), tclient(srv, "mo", mod=True)
    alice.join("r")
    seq = publish(alice, "r", "spam")
    assert mod.ok("delete", room="r", seq=seq) == {"room": "r", "seq": seq}  # not even a member
    assert next_of_type(alice, "deleted")["seq"] == seq
    # A non-moderator cannot erase or ban.
    assert alice.err("erase", user="mo") == "forbidden"
    assert alice.err("ban", user="mo", seconds=10) == "forbidden"
    assert alice.err("unban", user="mo") == "forbidden"


def test_tombstone_from_disk_across_restart(parley):
    secret = "the-deleted-text-%d" % os.getpid()
    srv = parley("--history-cache", "0")   # every read from disk
    alice, bob = srv.client("alice"), srv.client("bob")
    alice.join("r")
    bob.join("r")
    publish(alice, "r", "before")
    publish(alice, "r", secret)
    publish(bob, "r", "after")
    alice.ok("delete", room="r", seq=2, skip=True)
    msgs = bob.ok("history", room="r", skip=True)["messages"]
    assert msgs[1] == {"type": "message", "room": "r", "seq": 2, "deleted": True}
    data_dir = srv.data_dir
    srv.close_clients()
    assert srv.stop() == 0
    # Gone from the file, not hidden: neither the text nor (for this row) the sender.
    raw = file_bytes(data_dir)
    assert secret.encode() not in raw
    assert b"before" in raw  # the check can see text that is there

    srv2 = parley(data_dir=data_dir)
    # Deletes are not messages: the clean shutdown still counts as clean (no seq skip).
    assert "store_unclean_start" not in srv2.log()
    carol = srv2.client("carol")
    carol.ok("join", room="r", since=0, skip=True)   # replay read from disk (empty cache after a start)
    got = [carol.next_json() for _ in range(3)]
    assert [f["seq"] for f in got] == [1, 2, 3]
    assert got[1] == {"type": "message", "room": "r", "seq": 2, "deleted": True}
    assert got[0]["data"] == {"text": "before"} and got[2]["from"] == "bob"
    msgs = carol.ok("history", room="r")["messages"]
    assert msgs[1] == {"type": "message", "room": "r", "seq": 2, "deleted": True}
    # Deleting after the restart works from disk too.
    carol2 = srv2.client("bob")
    carol2.join("r")
    assert carol2.ok("delete", room="r", seq=3, skip=True) == {"room": "r", "seq": 3}
    assert carol2.ok("history", room="r")["messages"][2]["deleted"] is True


def test_deleted_frame_reaches_a_member_whose_replay_is_in_flight(parley):
    # A held replay (join with since, read from disk) still gets the deleted frame after its replay.
    srv = parley("--history-cache", "0")
    alice = srv.client("alice")
    alice.join("r")
    for i in range(50):
        publish(alice, "r", "m%d" % i)
    bob = srv.client("bob")
    jid = bob.send_cmd("join", room="r", since=0)
    alice.ok("delete", room="r", seq=50, skip=True)
    r = bob.wait_reply(jid, skip=True)
    assert r["ok"] and r["data"]["recovered"] is True
    frames = bob.backlog
    msgs = [f for f in frames if f["type"] == "message"]
    assert [m["seq"] for m in msgs] == list(range(1, 51))
    # Either the replay already saw the tombstone, or the deleted frame follows the reply.
    if not msgs[-1].get("deleted"):
        assert next_of_type(bob, "deleted")["seq"] == 50


# -------------------------------------------------------------------------------------------- bans


def closed_with(c, code, timeout=5):
    close, _ = c.recv_close(timeout=timeout)
    assert close.code == code, close
    return close


def test_ban_closes_every_connection_4003_with_reason(parley, secret_file):
    srv = tsrv(parley, secret_file)
    mod = tclient(srv, "mo", mod=True)
    a1, a2, bob = tclient(srv, "alice"), tclient(srv, "alice"), tclient(srv, "bob")
    d = mod.ok("ban", user="alice", seconds=60, reason="spamming the lobby")
    assert d["user"] == "alice" and d["until"] > time.time() * 1000 + 50000
    for c in (a1, a2):
        close = closed_with(c, 4003)
        assert close.reason == "spamming the lobby"
    bob.sync()  # others stay
    # Refused at hello with a token, and with ?token= on the URL.
    c = srv.client()
    assert c.err("hello", token=token("alice")) == "forbidden"
    assert closed_with(c, 4003).reason == "spamming the lobby"
    raw = srv.raw_client(path="/ws?token=" + token("alice"))
    assert closed_with(raw, 4003).reason == "spamming the lobby"
    metrics = srv.metrics_get()[2].decode()
    assert "parley_bans 1" in metrics
    assert 'parley_disconnects_total{reason="banned"}' in metrics


def test_ban_default_reason_and_argument_checks(parley, secret_file):
    srv = tsrv(parley, secret_file)
    mod = tclient(srv, "mo", mod=True)
    a = tclient(srv, "alice")
    mod.ok("ban", user="alice", seconds=60)
    assert closed_with(a, 4003).reason == "banned"
    assert mod.err("ban", user="alice", seconds=0) == "bad_request"
    assert mod.err("ban", user="alice", seconds=315360001) == "bad_request"
    assert mod.err("ban", user="alice", seconds=5, reason="x" * 121) == "bad_request"
    assert mod.err("ban", user="alice", seconds=5, reason="a\nb") == "bad_request"
    assert mod.err("ban", user="", seconds=5) == "bad_name"


def test_ban_survives_restart_and_lift_works(parley, secret_file):
    srv = tsrv(parley, secret_file)
    mod = tclient(srv, "mo", mod=True)
    mod.ok("ban", user="alice", seconds=600, reason="r1")
    mod.ok("ban", user="bob", seconds=600, reason="r2")
    data_dir = srv.data_dir
    srv.close_clients()
    assert srv.kill9() == -9   # the ban was acknowledged: it is on disk

    srv2 = tsrv(parley, secret_file, data_dir=data_dir)
    c = srv2.client()
    assert c.err("hello", token=token("alice")) == "forbidden"
    assert closed_with(c, 4003).reason == "r1"
    mod = tclient(srv2, "mo", mod=True)
    assert mod.ok("unban", user="alice") == {"user": "alice", "lifted": True}
    assert mod.ok("unban", user="alice") == {"user": "alice", "lifted": False}
    tclient(srv2, "alice").sync()
    srv2.close_clients()
    assert srv2.stop() == 0

    srv3 = tsrv(parley, secret_file, data_dir=data_dir)
    tclient(srv3, "alice").sync()           # the lift survived too
    c = srv3.client()
    assert c.err("hello", token=token("bob")) == "forbidden"
    assert closed_with(c, 4003).reason == "r2"


def test_ban_expires(parley, secret_file):
    srv = tsrv(parley, secret_file)
    mod = tclient(srv, "mo", mod=True)
    mod.ok("ban", user="alice", seconds=1)
    c = srv.client()
    assert c.err("hello", token=token("alice")) == "forbidden"
    closed_with(c, 4003)
    time.sleep(1.2)
    tclient(srv, "alice").sync()
    data_dir = srv.data_dir
    srv.close_clients()
    assert srv.stop() == 0
    srv2 = tsrv(parley, secret_file, data_dir=data_dir)
    tclient(srv2, "alice").sync()


def test_delete_of_a_message_still_queued_commits_promptly(parley):
    # The writer would wait 5 s before committing the message; the delete travels behind it through the
    # queue and asks for the commit now, so both are on disk within a fraction of that.
    srv = parley("--flush-interval-ms", "5000")
    alice = srv.client("alice")
    alice.join("r")
    seq = publish(alice, "r", "queued")
    t0 = time.monotonic()
    assert alice.ok("delete", room="r", seq=seq, skip=True) == {"room": "r", "seq": seq}
    assert time.monotonic() - t0 < 2.0
    assert next_of_type(alice, "deleted")["seq"] == seq


def test_socketio_client_deletes_and_sees_deleted(parley):
    # Socket.IO events map to the native commands by name: `delete` works there too, and the
    # `deleted` frame reaches Socket.IO members as a `deleted` event.
    import json
    from test_socketio_ws import ack, connect, event
    srv = parley()
    native = srv.client("native")
    native.join("mix")
    c, _ = connect(srv, auth={"name": "sock"})
    assert ack(c, 0, "join", {"room": "mix"})["ok"] is True
    r = ack(c, 1, "publish", {"room": "mix", "data": {"t": "oops"}})
    seq = r["data"]["seq"]
    other = publish(native, "mix", "native's")
    assert ack(c, 2, "delete", {"room": "mix", "seq": other})["error"]["code"] == "forbidden"
    # The deleted event comes first, then the ack (as the native frame precedes the reply).
    c.send_text("423" + json.dumps(["delete", {"room": "mix", "seq": seq}]))
    t = event(c)
    while not t.startswith('42["deleted"'):
        t = event(c)
    assert json.loads(t[2:]) == ["deleted", {"room": "mix", "seq": seq}]
    t = event(c)
    while not t.startswith("433"):
        t = event(c)
    assert json.loads(t[3:]) == [{"ok": True, "data": {"room": "mix", "seq": seq}}]
    assert next_of_type(native, "deleted") == {"type": "deleted", "room": "mix", "seq": seq}
