"""Cluster through Redis (docs/cluster.md): 3 nodes and a real redis-server with AOF.

Cross-node fan-out in seq order, the same history everywhere, `since` recovery on another node after
kill -9 of the first, idempotency keys across nodes, durable publishes across nodes, the HTTP API's
publish and broadcast on a node."""

import json
import threading
import time

from clusterhelp import RedisProxy, cluster, history, metric, wait_for, wait_log  # noqa: F401 (fixture)
from conftest import tmp_data_root  # noqa: F401 (fixture)


def test_cross_node_fanout_order_and_seq(cluster):
    redis = cluster.redis()
    nodes = cluster.nodes(redis, 3)
    rooms = ["r1", "r2"]
    # a listener per node per room
    listeners = []
    for i, n in enumerate(nodes):
        c = n.client("l%d" % i)
        for r in rooms:
            c.join(r)
        listeners.append(c)
    # two publishers per node, all into the same rooms, echo off, several in flight
    per = 40
    pubs = []
    for i, n in enumerate(nodes):
        for j in range(2):
            p = n.client("p%d%d" % (i, j))
            for r in rooms:
                p.join(r)
            pubs.append(p)
    errors = []

    def run(p, tag):
        try:
            pending = []
            for k in range(per):
                for r in rooms:
                    pending.append(p.send_cmd("publish", room=r, data={"t": tag, "k": k}, echo=False))
            for cid in pending:
                rep = p.wait_reply(cid, skip=True, timeout=20)
                assert rep["ok"] is True, rep
                assert rep["data"]["seq"] >= 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(p, "p%d" % i)) for i, p in enumerate(pubs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    total = per * len(pubs)
    got = []
    for c in listeners:
        seen = {r: [] for r in rooms}
        deadline = time.monotonic() + 20
        while sum(len(v) for v in seen.values()) < total * len(rooms) and time.monotonic() < deadline:
            f = c.next_json(timeout=max(0.01, deadline - time.monotonic()))
            if f.get("type") == "message":
                seen[f["room"]].append(f)
        for r in rooms:
            seqs = [m["seq"] for m in seen[r]]
            # every message once, in seq order, contiguous from 1
            assert seqs == list(range(1, total + 1)), (r, seqs[:20], len(seqs))
            # per publisher, its own order is kept
            for p in range(len(pubs)):
                ks = [m["data"]["k"] for m in seen[r] if m["data"]["t"] == "p%d" % p]
                assert ks == list(range(per))
        got.append({r: [(m["seq"], m["data"]["t"], m["data"]["k"]) for m in seen[r]] for r in rooms})
    # the same stream on every node
    assert got[0] == got[1] == got[2]
    for c in listeners:
        c.assert_nothing_pending(0.3)
    # and the same history from every node, equal to what was delivered
    for i, n in enumerate(nodes):
        h = n.client("h%d" % i)
        for r in rooms:
            h.join(r)
            msgs = history(h, r)
            assert [(m["seq"], m["data"]["t"], m["data"]["k"]) for m in msgs] == got[0][r]
    assert metric(nodes[0], "parley_cluster_redis_connected") == 1
    assert metric(nodes[0], "parley_cluster_applied_total") >= total * len(rooms)


def test_reply_after_own_echo_and_echo_false(cluster):
    redis = cluster.redis()
    a, b = cluster.nodes(redis, 2)
    ca = a.client("alice")
    ca.join("room")
    cb = b.client("bob")
    cb.join("room")
    for i in range(20):
        cid = ca.send_cmd("publish", room="room", data={"i": i})
        f = ca.next_json()
        # the publisher's own copy comes first, then the reply
        assert f["type"] == "message" and f["data"] == {"i": i}, f
        r = ca.wait_reply(cid)
        assert r["ok"] and r["data"]["seq"] == f["seq"]
        m = cb.next_json()
        assert m["type"] == "message" and m["seq"] == f["seq"]
    d = ca.ok("publish", room="room", data={"x": 1}, echo=False)
    m = cb.next_json()
    assert m["seq"] == d["seq"]
    ca.assert_nothing_pending(0.3)
    # volatile messages go through the log too: seq 0, in order with the others
    ca.ok("publish", room="room", data={"v": 1}, persist=False, echo=False)
    m = cb.next_json()
    assert m["type"] == "message" and m["data"] == {"v": 1} and m.get("seq", 0) == 0


def test_since_on_another_node_after_kill9(cluster):
    redis = cluster.redis()
    a, b, c = cluster.nodes(redis, 3)
    pub = c.client("pub")
    pub.join("chat")
    reader = a.client("reader")
    reader.join("chat")
    last = 0
    for i in range(30):
        last = pub.ok("publish", room="chat", data={"i": i}, echo=False)["seq"]
    wait_for(lambda: [f for f in [reader.next_json()] if f.get("seq") == last], 10, "the reader's copy")
    seen = 30
    a.kill9()
    for i in range(30, 50):
        pub.ok("publish", room="chat", data={"i": i}, echo=False)
    # the client reconnects to another node and recovers the rest with since
    r2 = b.client("reader")
    d = r2.ok("join", room="chat", since=seen, skip=True)
    msgs = []
    deadline = time.monotonic() + 10
    while len(msgs) < 20 and time.monotonic() < deadline:
        f = r2.next_json()
        if f.get("type") == "message":
            msgs.append(f)
    assert [m["data"]["i"] for m in msgs] == list(range(30, 50))
    assert [m["seq"] for m in msgs] == list(range(31, 51))
    # the room's latest seq on b when the join came: b applies the log a moment after c acked the
    # last publish, so it may still have been 49 (message 50 then came live, after the reply)
    assert 49 <= d["seq"] <= 50
    # the killed node comes back and catches up from its stored position
    a2 = cluster.node(redis, data_dir=a.data_dir, name="node0")
    h = a2.client("h")
    h.join("chat")
    wait_for(lambda: len(history(h, "chat")) == 50, 15, "node0 catching up")
    assert [m["data"]["i"] for m in history(h, "chat")] == list(range(50))


def test_idempotency_key_across_nodes(cluster):
    redis = cluster.redis()
    a, b = cluster.nodes(redis, 2)
    ca = a.client("u")
    ca.join("k")
    cb = b.client("u")
    cb.join("k")
    s1 = ca.ok("publish", room="k", data={"n": 1}, key="abc-1", echo=False)["seq"]
    # a retry of the same publish on the other node: same seq, not delivered again
    s2 = cb.ok("publish", room="k", data={"n": 1}, key="abc-1", skip=True)["seq"]
    assert s1 == s2
    s3 = cb.ok("publish", room="k", data={"n": 2}, key="abc-2", skip=True)["seq"]
    assert s3 == s1 + 1
    for n in (a, b):
        h = n.client("h")
        h.join("k")
        assert [m["data"]["n"] for m in history(h, "k")] == [1, 2]


def test_durable_across_nodes(cluster):
    redis = cluster.redis()
    a, b = cluster.nodes(redis, 2)
    ca = a.client("u")
    ca.join("d")
    d = ca.ok("publish", room="d", data={"n": 1}, durable=True, echo=False)
    assert d["durable"] is True and d["seq"] == 1
    # a durable reply means committed on the publishing node's disk: kill -9 and read it back
    a.kill9()
    a2 = cluster.node(redis, data_dir=a.data_dir, name="node0")
    h = a2.client("h")
    h.join("d")
    assert [m["data"] for m in history(h, "d")] == [{"n": 1}]
    hb = b.client("h")
    hb.join("d")
    wait_for(lambda: len(history(hb, "d")) == 1, 10, "node1 has it")


def test_redis_keys_and_unavailable_until_ready(cluster):
    redis = cluster.redis()
    a = cluster.node(redis)
    c = a.client("u")
    c.join("room")
    c.ok("publish", room="room", data={"x": 1}, echo=False)
    assert redis.cmd("HGET", "parley:meta", "shards") == "16"
    assert redis.cmd("XLEN", "parley:log:%d" % shard_of("room", 16)) == 1
    # a node with another shard count is refused
    bad = cluster.node(redis, "--cluster-shards", "8", wait_ready=False)
    wait_for(lambda: not bad.running(), 15, "the misconfigured node to exit")
    assert bad.proc.returncode == 3
    bad.returncode = 3  # expected: finish_servers must not stop it again
    bad._log.close()
    assert "cluster_shards is 8 here but 16 in Redis" in bad.log()


def shard_of(room, k):
    h = 0xcbf29ce484222325
    for ch in room.encode():
        h ^= ch
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % k


def test_http_api_publish_and_broadcast(cluster, tmp_data_root):  # noqa: F811
    import os
    from apihelp import KEY1, Api, api_port, write_keys
    redis = cluster.redis()
    keys = os.path.join(tmp_data_root, "api.keys")
    write_keys(keys, (("backend", KEY1),))
    a = cluster.node(redis, "--api-keys-file", keys)
    b = cluster.node(redis)
    a.api_port = api_port(a)
    cb = b.client("bob")
    cb.join("x")
    cb.join("y")
    api = Api(a)
    st, body, _ = api.request("POST", "/api/publish", {"room": "x", "data": {"n": 1}, "key": "api-1"})
    assert st == 200 and body["data"]["seq"] == 1, body
    # the retry of that key: same seq, nothing new
    st, body, _ = api.request("POST", "/api/publish", {"room": "x", "data": {"n": 1}, "key": "api-1"})
    assert st == 200 and body["data"]["seq"] == 1, body
    st, body, _ = api.request("POST", "/api/broadcast", {"rooms": ["x", "y"], "data": {"n": 2}})
    assert st == 200, body
    assert body["data"]["results"] == [{"room": "x", "seq": 2}, {"room": "y", "seq": 1}], body
    got = [cb.next_json() for _ in range(3)]
    assert [(m["room"], m["seq"]) for m in got] in ([("x", 1), ("x", 2), ("y", 1)], [("x", 1), ("y", 1), ("x", 2)])
    # Redis unreachable: 503 unavailable, history still served by the API
    redis.kill9()
    wait_for(lambda: metric(a, "parley_cluster_redis_connected") == 0, 10, "lost")
    st, body, _ = api.request("POST", "/api/publish", {"room": "x", "data": {"n": 3}})
    assert st == 503 and body["error"]["code"] == "unavailable", body
    st, body, _ = api.request("GET", "/api/history?room=x")
    assert st == 200 and [m["seq"] for m in body["data"]["messages"]] == [1, 2], body


def test_socketio_ack_in_cluster(cluster):
    """A Socket.IO publish is acked after its node applied it (seq from the log); with Redis gone the
    ack carries unavailable."""
    from test_socketio_ws import ack, connect
    redis = cluster.redis()
    a, b = cluster.nodes(redis, 2)
    cb = b.client("bob")
    cb.join("s")
    c, _ = connect(a)
    assert ack(c, 1, "join", {"room": "s"})["ok"] is True
    r = ack(c, 2, "publish", {"room": "s", "data": {"n": 1}, "echo": False})
    assert r == {"ok": True, "data": {"seq": 1}}, r
    m = cb.next_json()
    assert m["seq"] == 1 and m["data"] == {"n": 1}
    redis.kill9()
    wait_for(lambda: metric(a, "parley_cluster_redis_connected") == 0, 10, "lost")
    r = ack(c, 3, "publish", {"room": "s", "data": {"n": 2}, "echo": False})
    assert r["ok"] is False and r["error"]["code"] == "unavailable", r


def test_since_a_lagging_node_has_not_applied_yet(cluster):
    """A client that saw a message on one node (which then died) re-joins on a node that has not
    applied that message yet: its since is above that node's latest seq. The join waits for the node
    to catch up (at most --cluster-timeout-ms), then answers recovered:true with nothing replayed twice;
    it does not tell the client its copy is stale and then deliver what it had again. A since that
    the cluster never handed out still answers recovered:false, after the wait."""
    redis = cluster.redis()
    c = cluster.node(redis)
    proxy = RedisProxy(redis)
    try:
        b = cluster.node(proxy)
        pub = c.client("pub")
        pub.join("chat")
        obs = b.client("obs")
        obs.join("chat")
        for i in range(1, 11):
            pub.ok("publish", room="chat", data={"i": i}, echo=False)
        wait_for(lambda: [f for f in [obs.next_json()] if f.get("seq") == 10], 10, "b has seq 10")
        proxy.pause()  # b applies nothing more for now
        for i in range(11, 16):
            pub.ok("publish", room="chat", data={"i": i}, echo=False)
        pub.join("chat2")
        for i in range(1, 4):
            pub.ok("publish", room="chat2", data={"i": i}, echo=False)
        # w saw everything of both rooms: two waits on one connection
        w = b.client("w")
        jw = [w.send_cmd("join", room="chat", since=15), w.send_cmd("join", room="chat2", since=3)]
        x = b.client("x")   # saw all 15 on a node that died
        y = b.client("y")   # saw up to 12
        z = b.client("z")   # claims a seq nobody handed out
        jx = x.send_cmd("join", room="chat", since=15)
        jy = y.send_cmd("join", room="chat", since=12)
        jz = z.send_cmd("join", room="chat", since=99)
        x.assert_nothing_pending(0.3)  # no early "recovered":false while b is behind
        y.assert_nothing_pending(0.1)
        t0 = time.monotonic()
        proxy.resume()
        rx = x.wait_reply(jx, timeout=5)
        assert rx["ok"] and rx["data"]["seq"] == 15 and rx["data"]["recovered"] is True, rx
        for jid, seq in zip(jw, (15, 3)):
            r = w.wait_reply(jid, timeout=5)
            assert r["ok"] and r["data"]["seq"] == seq and r["data"]["recovered"] is True, r
        w.assert_nothing_pending(0.2)
        pub.ok("publish", room="chat", data={"i": 16}, echo=False)
        m = x.next_json(timeout=5)
        assert m["type"] == "message" and m["seq"] == 16, m  # not 11..15 again
        x.assert_nothing_pending(0.2)
        # y: 13..15 replayed (or, what b applied after the reply, live), then 16: each once, in order
        got, reply = [], None
        while not got or got[-1] != 16:
            f = y.next_json(timeout=5)
            if f.get("type") == "reply":
                assert f["id"] == jy and f["ok"] and f["data"]["recovered"] is True, f
                assert 12 <= f["data"]["seq"] <= 15, f
                reply = f
            else:
                assert f["type"] == "message", f
                got.append(f["seq"])
        assert reply is not None and got == [13, 14, 15, 16]
        y.assert_nothing_pending(0.2)
        # z: the cluster never handed out 99; after the wait (2 s here), not recovered
        rz = z.wait_reply(jz, skip=True, timeout=10)
        # (its latest seq at the end of the wait: 16 was published meanwhile; it is in the range the
        # reply covers, so it does not come again as a live message)
        assert rz["ok"] and rz["data"]["recovered"] is False and rz["data"]["seq"] == 16, rz
        assert time.monotonic() - t0 >= 1.0
        assert z.backlog == []
        z.assert_nothing_pending(0.2)
        assert "waited=timeout" in b.log() and "waited=done" in b.log()
    finally:
        proxy.close()


def test_a_wait_for_since_in_a_busy_room_does_not_fill_the_send_queue(cluster):
    """Where the lagging-node wait meets the slow-consumer limit: a since the cluster never handed out
    waits the whole --cluster-timeout-ms, and a busy room applies more messages meanwhile than the
    send queue holds. Those messages are in the range the answer covers, so they are not held: the
    client gets recovered:false at the latest seq, not a 4008 close; live messages follow."""
    redis = cluster.redis()
    c = cluster.node(redis)
    b = cluster.node(redis, "--send-queue-messages", "20")
    pub = c.client("pub")
    pub.join("busy")
    z = b.client("z")
    jz = z.send_cmd("join", room="busy", since=1000)
    for i in range(1, 51):
        pub.ok("publish", room="busy", data={"i": i}, echo=False)
    rz = z.wait_reply(jz, timeout=10)
    assert rz["ok"] and rz["data"]["recovered"] is False and rz["data"]["seq"] == 50, rz
    pub.ok("publish", room="busy", data={"i": 51}, echo=False)
    m = z.next_json(timeout=5)
    assert m["type"] == "message" and m["seq"] == 51, m
    assert "slow_consumer" not in b.log()
