"""The /admin feed in a cluster (issue 15): its `cluster` field lists the nodes (id, alive, members)
and this node's Redis lag; a node killed with kill -9 turns dead, then disappears, within the
presence TTL. (On a single node the field is null: test_admin_feed.py.)"""

import os
import time

import apihelp
from apihelp import KEY1, Api
from clusterhelp import cluster  # noqa: F401 (fixture)
from conftest import tmp_data_root  # noqa: F401 (fixture)
from test_admin_feed import Feed, ticket

TTL = 3


def until(feed, cond, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s, _ = feed.event()
        if cond(s):
            return s
        assert time.monotonic() < deadline, s["cluster"]


def test_feed_shows_the_nodes_and_the_redis_lag(cluster, tmp_path):
    redis = cluster.redis()
    keys = os.path.join(str(tmp_path), "api.keys")
    apihelp.write_keys(keys, (("backend", KEY1),))
    flags = ("--api-keys-file", keys, "--cluster-presence-ttl", TTL)
    n0 = cluster.node(redis, *flags, name="alpha")
    n1 = cluster.node(redis, *flags, name="beta")
    n0.api_port = apihelp.api_port(n0)
    a = Api(n0)
    b1, b2 = n1.client("bob"), n1.client("carl")
    b1.join("r1")
    b1.join("r2")
    b2.join("r1")
    al = n0.client("alice")
    al.join("r1")
    # a publish on beta, applied on alpha: a lag sample
    b1.ok("publish", room="r1", data="x", skip=True)
    f = Feed(n0, ticket(a))

    def ready(s):
        nodes = {n["id"]: n for n in s["cluster"]["nodes"]}
        return set(nodes) == {"alpha", "beta"} and nodes["beta"]["members"] == 3
    s = until(f, ready, 10)
    cl = s["cluster"]
    assert cl["node_id"] == "alpha" and cl["redis_connected"] is True and cl["publishing"] is True
    assert cl["presence_connected"] is True
    nodes = {n["id"]: n for n in cl["nodes"]}
    assert nodes["alpha"] == {"id": "alpha", "self": True, "alive": True, "members": 1, "last_heard_s": 0.0}
    assert nodes["beta"]["self"] is False and nodes["beta"]["alive"] is True
    assert 0 <= nodes["beta"]["last_heard_s"] <= TTL
    assert cl["lag_ms"] and all(x >= 0 for x in cl["lag_ms"]) and cl["lag_ms_max"] == max(cl["lag_ms"])
    # alpha applied beta's publish: a lag measured, sane for a local Redis (sub-ms rounds to 0)
    assert 0 <= cl["lag_ms_max"] < 5000
    # beta dies: within the TTL (+ the sweep) it is dead or gone, and its members with it
    n1.kill9()
    t0 = time.monotonic()
    until(f, lambda s: "beta" not in {n["id"] for n in s["cluster"]["nodes"] if n["alive"]}, TTL + 3)
    assert time.monotonic() - t0 <= TTL + 2
    f.close()
