"""Presence across the nodes of a cluster (issue 13): a real redis-server on a free port and three
parleyd with --cluster. A presence query lists the members of every node; join and leave events
reach watchers on every node, batched per window; a node killed with kill -9 loses its members on
the others within cluster_presence_ttl (+ slack); a node that stops cleanly loses them at once; a
user connected to two nodes stays present when one of them dies; a node restarted under the same
id replaces its old members at once.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import HOST

TTL = 3  # cluster_presence_ttl for these tests (the default is 15)
WINDOW_MS = 200


def metric(srv, name):
    status, _, body = srv.metrics_get()
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def redis(tmp_data_root):
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(exe, os.X_OK):
        pytest.fail("redis-server is not installed (scripts/deps.sh installs it)")
    d = os.path.join(tmp_data_root, "redis")
    os.makedirs(d)
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", HOST, "--dir", d, "--save", "",
                                 "--appendonly", "yes"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start")
    yield "redis://%s:%d" % (HOST, port)
    proc.terminate()
    proc.wait(10)


def node(parley, redis, name, *flags):
    return parley("--cluster", redis, "--node-id", name, "--cluster-presence-ttl", TTL,
                  "--presence-window-ms", WINDOW_MS, *flags)


def wait_loaded(srv):
    deadline = time.monotonic() + 10
    while "msg=cluster_presence event=loaded" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.02)


def members(c, room):
    return {m["user"]: m["conns"] for m in c.ok("presence", room=room, skip=True)["members"]}


def wait_members(c, room, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got = members(c, room)
        if got == want:
            return
        assert time.monotonic() < deadline, "presence %r, want %r" % (got, want)
        time.sleep(0.05)


def presence_events(c, timeout):
    """Presence frames until none arrives for `timeout` s (the backlog first)."""
    out = [f for f in c.backlog if f.get("type") == "presence"]
    c.backlog = [f for f in c.backlog if f.get("type") != "presence"]
    while True:
        try:
            f = c.recv_json(timeout=timeout)
        except Exception:
            return out
        if f.get("type") == "presence":
            out.append(f)


def wait_event(c, key, user, timeout):
    """Seconds until a presence frame lists user under key ("joined"/"left")."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    for f in c.backlog:
        if f.get("type") == "presence" and user in f.get(key, []):
            c.backlog.remove(f)
            return time.monotonic() - t0
    while time.monotonic() < deadline:
        f = c.recv_json(timeout=max(0.01, deadline - time.monotonic()))
        if f.get("type") == "presence" and user in f.get(key, []):
            return time.monotonic() - t0
    raise AssertionError("no %s event for %s within %.1f s" % (key, user, timeout))


@pytest.fixture
def three(parley, redis):
    nodes = [node(parley, redis, "n%d" % i) for i in (1, 2, 3)]
    for s in nodes:
        wait_loaded(s)
    return nodes


def test_presence_lists_members_of_every_node(three):
    n1, n2, n3 = three
    a, b, c = n1.client("alice"), n2.client("bob"), n3.client("carol")
    for cl in (a, b, c):
        cl.join("lobby")
    want = {"alice": 1, "bob": 1, "carol": 1}
    for cl in (a, b, c):
        wait_members(cl, "lobby", want)
    # a second connection of bob, on another node: conns counts both
    b2 = n3.client("bob")
    b2.join("lobby")
    wait_members(a, "lobby", {"alice": 1, "bob": 2, "carol": 1})
    # the join reply's member count is cluster-wide too (distinct users)
    d = n1.client("dave")
    assert d.join("lobby")["members"] == 4
    # ...and once a node dies, its users no longer count
    n2.kill9()
    n3.kill9()
    deadline = time.monotonic() + TTL + 3
    while members(a, "lobby") != {"alice": 1, "dave": 1}:
        assert time.monotonic() < deadline, members(a, "lobby")
        time.sleep(0.1)
    assert n1.client("erin").join("lobby")["members"] == 3


def test_join_and_leave_events_reach_watchers_on_every_node(three):
    n1, n2, n3 = three
    w1, w3 = n1.client("w1"), n3.client("w3")
    w1.join("room", presence=True)
    w3.join("room", presence=True)
    wait_members(w1, "room", {"w1": 1, "w3": 1})
    presence_events(w1, 0.5)
    presence_events(w3, 0.5)
    b = n2.client("bob")
    b.join("room")
    assert wait_event(w1, "joined", "bob", 5) < 5
    assert wait_event(w3, "joined", "bob", 5) < 5
    b.send_cmd("leave", room="room")
    assert wait_event(w1, "left", "bob", 5) < 5
    assert wait_event(w3, "left", "bob", 5) < 5


def test_remote_joins_are_batched(three):
    n1, n2, _ = three
    w = n1.client("watcher")
    w.join("batch", presence=True)
    presence_events(w, 0.5)
    users = [n2.client("u%d" % i) for i in range(10)]
    for u in users:
        u.send_cmd("join", room="batch")  # no wait: all within one window
    for u in users:
        u.wait_reply(u._next_id, skip=True)
    frames = presence_events(w, 1.0)
    joined = [name for f in frames for name in f["joined"]]
    assert sorted(joined) == sorted("u%d" % i for i in range(10)), frames
    # 10 joins, at most 2 frames (one window here, the change stream in between): batched
    assert 1 <= len(frames) <= 2, frames


def test_kill9_node_members_leave_within_the_ttl(three):
    n1, n2, n3 = three
    w1, w3 = n1.client("w1"), n3.client("w3")
    w1.join("crash", presence=True)
    w3.join("crash", presence=True)
    b = n2.client("bob")
    b.join("crash")
    wait_members(w1, "crash", {"w1": 1, "w3": 1, "bob": 1})
    wait_members(w3, "crash", {"w1": 1, "w3": 1, "bob": 1})
    presence_events(w1, 0.3)
    presence_events(w3, 0.3)
    n2.kill9()
    t1 = wait_event(w1, "left", "bob", TTL + 3)
    t3 = wait_event(w3, "left", "bob", TTL + 3)
    # heartbeats every TTL/3: the leave comes after between 2/3 TTL and TTL (+ the 0.5 s expiry
    # sweep and the presence window), not at once (that would be another path)
    assert TTL / 3 < t1 <= TTL + 1.5 and t3 <= TTL + 1.5, (t1, t3)
    assert members(w1, "crash") == {"w1": 1, "w3": 1}
    assert members(w3, "crash") == {"w1": 1, "w3": 1}
    # and the metrics say so: one node expired, one other node left alive, its members gone
    assert metric(n1, "parley_cluster_presence_expired_total") == 1
    assert metric(n1, "parley_cluster_presence_nodes") == 1
    assert metric(n1, "parley_cluster_presence_connected") == 1
    assert metric(n1, "parley_cluster_presence_remote_members") == 1  # w3 in "crash"


def test_a_user_on_two_nodes_stays_when_one_dies(three):
    n1, n2, n3 = three
    w = n1.client("w")
    w.join("two", presence=True)
    a2, a3 = n2.client("alice"), n3.client("alice")
    a2.join("two")
    a3.join("two")
    wait_members(w, "two", {"w": 1, "alice": 2})
    presence_events(w, 0.3)
    n2.kill9()
    deadline = time.monotonic() + TTL + 3
    while members(w, "two") != {"w": 1, "alice": 1}:
        assert time.monotonic() < deadline, members(w, "two")
        time.sleep(0.1)
    # alice never left: no event names her
    frames = presence_events(w, WINDOW_MS / 1000 * 3)
    assert all("alice" not in f["left"] and "alice" not in f["joined"] for f in frames), frames


def test_a_node_that_stops_cleanly_loses_its_members_at_once(three):
    n1, n2, n3 = three
    w = n1.client("w")
    w.join("bye", presence=True)
    c = n3.client("carol")
    c.join("bye")
    wait_members(w, "bye", {"w": 1, "carol": 1})
    presence_events(w, 0.3)
    n3.send_signal(signal.SIGTERM)
    assert wait_event(w, "left", "carol", TTL + 3) < TTL / 2
    assert metric(n1, "parley_cluster_presence_left_total") == 1
    assert metric(n1, "parley_cluster_presence_expired_total") == 0


def test_a_restarted_node_replaces_its_old_members(parley, redis):
    n1 = node(parley, redis, "n1")
    n2 = node(parley, redis, "n2")
    wait_loaded(n1)
    wait_loaded(n2)
    w = n1.client("w")
    w.join("again", presence=True)
    b = n2.client("bob")
    b.join("again")
    wait_members(w, "again", {"w": 1, "bob": 1})
    presence_events(w, 0.3)
    n2.kill9()
    # same id, fresh process, nobody connected: bob leaves long before the TTL
    n2b = node(parley, redis, "n2")
    t = wait_event(w, "left", "bob", TTL + 3)
    assert t < TTL, t
    wait_loaded(n2b)


def test_redis_losing_its_data_neither_drops_nor_forgets_members(parley, tmp_data_root):
    """Redis killed and restarted empty (its AOF removed): each node's heartbeat finds its hash gone
    and writes it whole again. A watcher sees no one leave, and a node started afterwards sees
    everyone."""
    from clusterhelp import Redis
    r = Redis(tmp_data_root)
    try:
        n1, n2 = node(parley, r.url, "n1"), node(parley, r.url, "n2")
        wait_loaded(n1)
        wait_loaded(n2)
        w = n1.client("w")
        w.join("keep", presence=True)
        b = n2.client("bob")
        b.join("keep")
        wait_members(w, "keep", {"w": 1, "bob": 1})
        presence_events(w, 0.3)
        r.kill9()
        shutil.rmtree(os.path.join(r.dir, "appendonlydir"), ignore_errors=True)
        r.start()
        n3 = node(parley, r.url, "n3")
        wait_loaded(n3)
        c = n3.client("carol")
        c.join("keep")
        # within a heartbeat (TTL/3) plus reconnect backoff, the new node sees all three
        wait_members(c, "keep", {"w": 1, "bob": 1, "carol": 1}, timeout=TTL + 5)
        # and the watcher saw carol join, nobody leave, over more than a TTL
        frames = presence_events(w, TTL + 1)
        assert all(not f["left"] for f in frames), frames
        assert any("carol" in f["joined"] for f in frames), frames
        assert members(w, "keep") == {"w": 1, "bob": 1, "carol": 1}
    finally:
        r.kill9()
