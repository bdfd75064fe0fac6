"""The cluster's edges (issue 13), with a real redis-server and 3 nodes: a message published on a
connection served by one node reaches members connected to the others when the nodes share one
port (--reuse-port) and when nginx (deploy/nginx-cluster.conf) spreads the connections; and
parley-bench spreads a fan-out over the nodes with --url lists and --procs, every delivery
counted.
"""

import json
import os
import re
import subprocess

from clusterhelp import cluster, wait_for  # noqa: F401 (fixture)
from conftest import HOST, ParleyClient, tmp_data_root  # noqa: F401 (fixture)
from test_nginx_nodes import nginx_nodes  # noqa: F401 (fixture)

BENCH = os.environ.get("PARLEY_BENCH")


def connections(srv):
    status, _, body = srv.metrics_get()
    assert status == 200
    return int(re.search(rb"^parley_connections (\d+)$", body, re.M).group(1))


def one_client_per_node(port, nodes, name):
    """Opens connections to the shared port until every node holds one; returns one client per
    node (in the nodes' order) and closes the extra ones."""
    per_node, extra = [None] * len(nodes), []
    for i in range(200):
        before = [connections(s) for s in nodes]
        c = ParleyClient(HOST, port, timeout=5.0)
        after = [connections(s) for s in nodes]
        k = [j for j in range(len(nodes)) if after[j] > before[j]]
        assert len(k) == 1, (before, after)
        if per_node[k[0]] is None:
            c.hello("%s%d" % (name, k[0]))
            per_node[k[0]] = c
        else:
            extra.append(c)
        if all(per_node):
            break
    for c in extra:
        c.close_socket()
    assert all(per_node), "the kernel put 200 connections on %d of %d nodes" % (
        sum(1 for c in per_node if c), len(nodes))
    return per_node


def test_reuse_port_cluster_delivers_across_nodes(cluster):
    redis = cluster.redis()
    first = cluster.node(redis, "--reuse-port", "1", name="rp0")
    nodes = [first] + [cluster.node(redis, "--reuse-port", "1", "--port", first.port, name="rp%d" % i)
                       for i in (1, 2)]
    clients = one_client_per_node(first.port, nodes, "m")
    for c in clients:
        c.join("shared")
    for k, pub in enumerate(clients):
        seq = pub.ok("publish", room="shared", data={"from": k}, skip=True)["seq"]
        for c in clients:  # every member, on every node, the publisher's echo included
            f = next_message(c)
            assert f["data"] == {"from": k} and f["seq"] == seq, f


def next_message(c, timeout=10):
    while True:
        f = c.next_json(timeout=timeout)
        if f.get("type") == "message":
            return f


def test_nginx_in_front_of_a_cluster_delivers_across_nodes(cluster, nginx_nodes):
    redis = cluster.redis()
    nodes = cluster.nodes(redis, 3)
    n = nginx_nodes(nodes)
    clients = [n.client() for _ in range(9)]
    counts = [connections(s) for s in nodes]
    assert counts == [3, 3, 3], counts  # least_conn, every connection held
    for i, c in enumerate(clients):
        c.hello("c%d" % i)
        c.join("via-nginx")
    seq = clients[0].ok("publish", room="via-nginx", data="hello", skip=True)["seq"]
    for c in clients:
        f = next_message(c)
        assert f["data"] == "hello" and f["seq"] == seq, f


def test_bench_fanout_over_three_nodes_in_two_processes(cluster):
    redis = cluster.redis()
    nodes = cluster.nodes(redis, 3)
    urls = ",".join("ws://%s:%d/ws" % (HOST, s.port) for s in nodes)
    pids = ",".join(str(s.proc.pid) for s in nodes)
    assert BENCH and os.path.exists(BENCH)
    out = subprocess.run([BENCH, "fanout", "--url", urls, "--members", "90", "--rate", "20",
                          "--duration", "2", "--drain", "5", "--procs", "2", "--server-pid", pids,
                          "--json", "--quiet"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    r = json.loads(out.stdout)
    assert r["urls"] == 3 and r["procs"] == 2 and r["server_pids"] == 3, r
    assert r["joined"] == 90 and r["delivered"] == r["expected"] == r["published"] * 90 > 0, r
    assert all(r["server%d_pid" % k] == nodes[k - 1].proc.pid for k in (1, 2, 3)), r
