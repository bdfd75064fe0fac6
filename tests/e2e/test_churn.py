"""Connections coming and going while messages flow: the server stays up and consistent."""

import random
import socket
import time

from wsclient import WSClosed


def test_members_disconnecting_during_fanout_do_not_disturb_the_rest(srv):
    pub = srv.client("pub", timeout=10)
    pub.join("r")
    stay = [srv.client("stay%d" % i, timeout=10) for i in range(5)]
    for c in stay:
        c.join("r")
    rng = random.Random(7)
    goers = []
    deadline = time.monotonic() + 60
    for i in range(300):
        if i % 3 == 0:
            g = srv.client(timeout=10)
            g.join("r")
            goers.append(g)
        if goers and rng.random() < 0.4:
            goers.pop(rng.randrange(len(goers))).close_socket()  # vanish without a close frame
        pub.ok("publish", room="r", data=i, echo=False)
        assert time.monotonic() < deadline
    for c in stay:
        got = [c.next_json()["data"] for _ in range(300)]
        assert got == list(range(300))
    assert srv.http_get("/healthz")[0] == 200


def test_abrupt_disconnect_leaves_every_room(srv):
    a = srv.client("alice")
    rooms = ["r%d" % i for i in range(20)]
    for r in rooms:
        a.join(r)
    b = srv.client("bob")
    for r in rooms:
        b.join(r)
    b.close_socket()
    deadline = time.monotonic() + 5
    while True:
        counts = [len(a.ok("presence", room=r)["members"]) for r in rooms]
        if counts == [1] * len(rooms):
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)


def test_rename_of_one_of_two_connections_splits_the_user(parley):
    s = parley("--presence-window-ms", "200")
    a = s.client("alice")
    a.join("r", presence=True)
    b1 = s.client("bob")
    b2 = s.client("bob")
    b1.join("r")
    b2.join("r")
    time.sleep(0.6)
    a.sync()
    a.backlog = []
    b1.hello("rob")
    members = sorted((m["user"], m["conns"]) for m in a.ok("presence", room="r", skip=True)["members"])
    assert members == [("alice", 1), ("bob", 1), ("rob", 1)]
    time.sleep(0.6)
    a.sync()
    frames = [f for f in a.backlog if f.get("type") == "presence"]
    joined = sum((f["joined"] for f in frames), [])
    left = sum((f["left"] for f in frames), [])
    assert joined == ["rob"] and left == [], frames


def test_durable_publish_then_immediate_disconnect_is_harmless(srv):
    a = srv.client("alice")
    a.join("r")
    for i in range(20):
        a.send_cmd("publish", room="r", data=i, durable=True)
    a.close_socket()
    b = srv.client("bob")
    b.join("r")
    assert b.ok("publish", room="r", data="after", echo=False)["seq"] >= 2
    time.sleep(0.3)  # let the commits land on the closed connection
    assert srv.running()
    assert srv.http_get("/healthz")[0] == 200


def test_half_written_frame_then_disconnect_is_harmless(srv):
    a = srv.client()
    a.send_raw(b"\x81\xfe\x10\x00abcd" + b"x" * 100)  # announces 4096 bytes, sends 100
    a.close_socket()
    b = srv.client()
    assert b.request("ping")["ok"] is True
