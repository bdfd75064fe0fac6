"""Moderation across a cluster (docs/cluster.md, "Moderation"): delete, erase, ban and unban go
through the Redis log, so every node applies them in log order. 3 nodes and a real redis-server.

Delete on node A: the tombstone in history on B and C and a live `deleted` frame to their members; a
user deleting someone else's message is refused, and nothing changes on any node; a ban through the
API of A closes the user's connection on B with 4003 and refuses it at hello on C; the unban lifts it
everywhere; an erase through A tombstones the user's messages on every node; a node killed -9 before
the moderation entries reached it applies them when it comes back."""

import os
import time

import apihelp
from clusterhelp import cluster, history, wait_for  # noqa: F401 (fixture)
from conftest import tmp_data_root  # noqa: F401 (fixture)
from test_moderation import closed_with, next_of_type, publish


def api_nodes(cluster, redis, n):
    """n nodes, each with the HTTP API on (one keys file)."""
    path = os.path.join(cluster.root, "api.keys")
    apihelp.write_keys(path, (("backend", apihelp.KEY1),))
    nodes = [cluster.node(redis, "--api-keys-file", path) for _ in range(n)]
    for n_ in nodes:
        n_.api_port = apihelp.api_port(n_)
    return nodes


def tombstoned(node, room, seq):
    h = node.client("h")
    h.join(room, skip=True)
    msgs = [m for m in history(h, room) if m["seq"] == seq]
    h.close_socket()
    return bool(msgs) and msgs[0].get("deleted") is True


def hist(node, room):
    h = node.client("h")
    h.join(room, skip=True)
    out = history(h, room)
    h.close_socket()
    return out


def refused(node, user, reason):
    """Waits until node refuses user at hello (4003 with reason): each node applies the log on its
    own, so a node may be a moment behind the one that answered."""
    def once():
        cl = node.client()
        r = cl.request("hello", name=user)
        if r.get("ok") is True:
            cl.close_socket()
            return False
        assert r["error"]["code"] == "forbidden", r
        assert closed_with(cl, 4003).reason == reason
        return True
    wait_for(once, 10, "%s refused on a node" % user)


def test_delete_replicated_live_and_in_history(cluster):
    redis = cluster.redis()
    a, b, c = api_nodes(cluster, redis, 3)
    alice = a.client("alice")
    alice.join("r")
    members = []
    for n, name in ((b, "bob"), (c, "carol")):
        m = n.client(name)
        m.join("r")
        members.append(m)
    seq = publish(alice, "r", "delete me")
    keep = publish(alice, "r", "keep me")
    for m in members:
        assert next_of_type(m, "message")["seq"] == seq
    # the sender deletes its own message over the protocol on A
    assert alice.ok("delete", room="r", seq=seq, skip=True) == {"room": "r", "seq": seq}
    for m in members + [alice]:
        assert next_of_type(m, "deleted") == {"type": "deleted", "room": "r", "seq": seq}
    for n in (a, b, c):
        wait_for(lambda: tombstoned(n, "r", seq), 10, "the tombstone on every node")
        h = hist(n, "r")
        assert [x["seq"] for x in h] == [seq, keep]
        assert h[1]["data"] == {"text": "keep me"}
    # the API of B deletes the other one; A's member sees it live
    api = apihelp.Api(b)
    assert api.ok("POST", "/api/delete", {"room": "r", "seq": keep}) == {"room": "r", "seq": keep}
    assert next_of_type(alice, "deleted") == {"type": "deleted", "room": "r", "seq": keep}
    for n in (a, b, c):
        wait_for(lambda: tombstoned(n, "r", keep), 10, "the second tombstone on every node")
    # unknown seq or room: not_found, decided at apply (every node alike)
    api.err("POST", "/api/delete", {"room": "r", "seq": 99}, status=404, code="not_found")
    api.err("POST", "/api/delete", {"room": "nope", "seq": 1}, status=404, code="not_found")
    api.close()


def test_delete_of_someone_elses_message_refused_everywhere(cluster):
    redis = cluster.redis()
    a, b, c = cluster.nodes(redis, 3)
    alice = a.client("alice")
    alice.join("r")
    seq = publish(alice, "r", "mine")
    # bob on B: the check runs when B applies the entry, against its copy
    bob = b.client("bob")
    bob.join("r", skip=True)
    wait_for(lambda: len(hist(b, "r")) == 1, 10, "B has the message")
    assert bob.err("delete", room="r", seq=seq, skip=True) == "forbidden"
    # carol on C too, and a marker afterwards proves every node applied the refused entries
    carol = c.client("carol")
    carol.join("r", skip=True)
    assert carol.err("delete", room="r", seq=seq, skip=True) == "forbidden"
    marker = publish(alice, "r", "marker")
    for n in (a, b, c):
        wait_for(lambda: len(hist(n, "r")) == 2, 10, "the marker on every node")
        h = hist(n, "r")
        assert [x["seq"] for x in h] == [seq, marker]
        assert h[0]["data"] == {"text": "mine"} and "deleted" not in h[0]


def test_ban_and_unban_across_nodes(cluster):
    redis = cluster.redis()
    a, b, c = api_nodes(cluster, redis, 3)
    on_b = b.client("mallory")
    other = b.client("bob")
    api = apihelp.Api(a)
    d = api.ok("POST", "/api/ban", {"user": "mallory", "seconds": 60, "reason": "flooding"})
    assert d["user"] == "mallory" and d["until"] > time.time() * 1000 + 50000
    assert closed_with(on_b, 4003).reason == "flooding"
    other.sync()  # others stay
    refused(c, "mallory", "flooding")
    # the same end everywhere: it was fixed at the origin
    # lifted everywhere through the API of another node
    api_c = apihelp.Api(c)
    assert api_c.ok("DELETE", "/api/ban", {"user": "mallory"}) == {"user": "mallory", "lifted": True}
    for n in (a, b, c):
        # applied on every node in log order (shard 0): wait for it, then hello is accepted
        def back(n=n):
            cl = n.client()
            r = cl.request("hello", name="mallory")
            cl.close_socket()
            return r.get("ok") is True
        wait_for(back, 10, "the unban on every node")
    api.close()
    api_c.close()


def test_erase_tombstones_on_every_node(cluster):
    redis = cluster.redis()
    a, b, c = api_nodes(cluster, redis, 3)
    eve, bob = b.client("eve"), c.client("bob")
    for r in ("r1", "r2"):
        eve.join(r)
        bob.join(r)
    for i in range(5):
        publish(eve, "r1", "eve-%d" % i)
        publish(eve, "r2", "eve-%d" % i)
        publish(bob, "r1", "bob-%d" % i)
    for n in (a, b, c):
        wait_for(lambda: len(hist(n, "r1")) == 10 and len(hist(n, "r2")) == 5, 10, "all replicated")
    api = apihelp.Api(a)
    assert api.ok("POST", "/api/erase", {"user": "eve"}) == {"user": "eve", "started": True}

    def erased(n):
        h1, h2 = hist(n, "r1"), hist(n, "r2")
        live = [m for m in h1 + h2 if not m.get("deleted")]
        return (all(m["from"] == "bob" for m in live) and
                sum(1 for m in h1 + h2 if m.get("deleted")) == 10)

    for n in (a, b, c):
        wait_for(lambda: erased(n), 30, "the erase on every node")
        assert [m["data"]["text"] for m in hist(n, "r1") if not m.get("deleted")] == \
            ["bob-%d" % i for i in range(5)]
    api.close()


def test_node_killed_before_the_entries_applies_them_after_restart(cluster):
    redis = cluster.redis()
    a, b, c = api_nodes(cluster, redis, 3)
    alice = a.client("alice")
    alice.join("r")
    s1 = publish(alice, "r", "one")
    s2 = publish(alice, "r", "two")
    wait_for(lambda: len(hist(c, "r")) == 2, 10, "C has both")
    c.kill9()
    api = apihelp.Api(a)
    api.ok("POST", "/api/delete", {"room": "r", "seq": s1})
    api.ok("POST", "/api/ban", {"user": "mallory", "seconds": 60, "reason": "gone"})
    api.close()
    wait_for(lambda: tombstoned(b, "r", s1), 10, "B applied the delete")
    c2 = cluster.node(redis, "--api-keys-file", os.path.join(cluster.root, "api.keys"),
                      data_dir=c.data_dir, name="node2")
    wait_for(lambda: tombstoned(c2, "r", s1), 15, "C applied the delete after its restart")
    h = hist(c2, "r")
    assert [m["seq"] for m in h] == [s1, s2] and h[1]["data"] == {"text": "two"}
    refused(c2, "mallory", "gone")


def test_moderation_entries_lost_by_redis_are_restored(cluster):
    """Redis comes back without the last entries (an AOF from before them): the nodes that applied
    the moderation entries re-append them (restore, from cluster_mods), so a node that had not seen
    them applies them when it comes back."""
    redis = cluster.redis()
    a, b, c = api_nodes(cluster, redis, 3)
    alice = a.client("alice")
    alice.join("r")
    s1 = publish(alice, "r", "one")
    s2 = publish(alice, "r", "two")
    wait_for(lambda: len(hist(c, "r")) == 2, 10, "C has both")
    c.kill9()
    redis.snapshot()
    api = apihelp.Api(a)
    api.ok("POST", "/api/delete", {"room": "r", "seq": s1})
    api.ok("POST", "/api/ban", {"user": "mallory", "seconds": 60, "reason": "gone"})
    api.close()
    wait_for(lambda: tombstoned(b, "r", s1), 10, "B applied the delete")
    redis.crash_to_snapshot()
    redis.start()
    # the snapshot has no moderation entry; the restore puts both back
    for n in (a, b):
        wait_for(lambda: "msg=cluster_restored" in n.log(), 20, "the restore")

    def mod_kinds():
        out = []
        for k in range(16):
            for _id, fields in redis.cmd("XRANGE", "parley:log:%d" % k, "-", "+"):
                f = dict(zip(fields[::2], fields[1::2]))
                if "m" in f:
                    out.append(f["m"])
        return sorted(out)

    wait_for(lambda: mod_kinds() == ["b", "d"], 10, "both entries back in the log")
    c2 = cluster.node(redis, "--api-keys-file", os.path.join(cluster.root, "api.keys"),
                      data_dir=c.data_dir, name="node2")
    wait_for(lambda: tombstoned(c2, "r", s1), 15, "C applied the restored delete")
    assert [m["seq"] for m in hist(c2, "r")] == [s1, s2]
    refused(c2, "mallory", "gone")
    # and moderation goes on after the restore: lifted everywhere
    c2.api_port = apihelp.api_port(c2)
    api = apihelp.Api(b)

    def unban():
        # the hold (cluster_hold_ms) outlives the restore: unavailable until it ends, like a publish
        st, obj, _ = api.request("DELETE", "/api/ban", {"user": "mallory"})
        if st == 503:
            assert obj["error"]["code"] == "unavailable", obj
            return None
        assert st == 200, (st, obj)
        return obj["data"]

    assert wait_for(unban, 15, "the unban accepted") == {"user": "mallory", "lifted": True}
    api.close()
    for n in (a, b, c2):
        def back(n=n):
            cl = n.client()
            r = cl.request("hello", name="mallory")
            cl.close_socket()
            return r.get("ok") is True
        wait_for(back, 10, "the unban on every node")
