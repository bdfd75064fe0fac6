"""deploy/nginx-cluster.conf (issue 13): a real nginx in front of 3 parleyd. WebSocket connections
spread over the nodes with no stickiness (least_conn), a dead node is skipped, and Socket.IO
long-polling sessions keep working because /socket.io/ is balanced by client address: with the
WebSocket upstream's balancing instead, a polling session's requests reach nodes that do not hold
it. (Cross-node delivery through nginx with --cluster: test_cluster_ops.py.)
"""

import http.client
import json
import os
import re

import pytest

from conftest import HOST
from nginxhelp import Nginx

HERE = os.path.dirname(os.path.abspath(__file__))
SITE = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "nginx-cluster.conf"))
NODE_ADDRS = ("127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083")


def site_text(ports, listen_port, log_dir, sio_upstream=None):
    """deploy/nginx-cluster.conf with the nodes, listen address and log paths rewritten; sio_upstream
    replaces the /socket.io/ location's upstream (the negative control)."""
    with open(SITE) as f:
        text = f.read()
    for addr, port in zip(NODE_ADDRS, ports):
        assert text.count("server %s " % addr) == 2, "nginx-cluster.conf: %s not in both upstreams" % addr
        text = text.replace("server %s " % addr, "server %s:%d " % (HOST, port))
    for old, new in (("listen 80;", "listen %s:%d;" % (HOST, listen_port)), ("listen [::]:80;", ""),
                     ("/var/log/nginx/", log_dir.rstrip("/") + "/")):
        assert old in text, old
        text = text.replace(old, new)
    if sio_upstream:
        text = text.replace("proxy_pass http://parleyd_nodes_sio;", "proxy_pass http://%s;" % sio_upstream)
    return text


@pytest.fixture
def nginx_nodes(request, tmp_data_root):
    started = []

    def start(nodes, sio_upstream=None):
        prefix = os.path.join(tmp_data_root, "nginx%d" % len(started))
        n = Nginx(prefix, lambda port: site_text([s.port for s in nodes], port, prefix, sio_upstream))
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()


def connections(srv):
    status, _, body = srv.metrics_get()
    assert status == 200
    return int(re.search(rb"^parley_connections (\d+)$", body, re.M).group(1))


def test_websockets_spread_over_the_nodes(parley, nginx_nodes):
    nodes = [parley() for _ in range(3)]
    n = nginx_nodes(nodes)
    clients = [n.client() for _ in range(30)]
    for c in clients:
        assert c.welcome["type"] == "welcome"
    counts = [connections(s) for s in nodes]
    # least_conn with every connection held: as even as it gets
    assert sum(counts) == 30 and max(counts) - min(counts) <= 1, counts
    for c in clients:
        c.close_socket()


def test_a_dead_node_is_skipped(parley, nginx_nodes):
    nodes = [parley() for _ in range(3)]
    n = nginx_nodes(nodes)
    nodes[1].kill9()
    clients = [n.client() for _ in range(20)]
    for c in clients:
        assert c.welcome["type"] == "welcome"
    assert connections(nodes[0]) + connections(nodes[2]) == 20
    for c in clients:
        c.close_socket()


def poll(port, method, query, body=None):
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request(method, "/socket.io/?" + query, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def polling_session(port):
    """Handshake, CONNECT, then one GET; returns the statuses of the POST and the GET."""
    st, b = poll(port, "GET", "EIO=4&transport=polling")
    assert st == 200, b
    q = "EIO=4&transport=polling&sid=" + json.loads(b.decode()[1:])["sid"]
    st_post, _ = poll(port, "POST", q, "40")
    st_get, b = poll(port, "GET", q)
    return st_post, st_get, b


def test_socketio_polling_sessions_stay_on_their_node(parley, nginx_nodes):
    nodes = [parley() for _ in range(3)]
    n = nginx_nodes(nodes)
    for _ in range(10):
        st_post, st_get, body = polling_session(n.port)
        assert (st_post, st_get) == (200, 200) and body.startswith(b"40{"), body


def test_socketio_polling_breaks_without_address_affinity(parley, nginx_nodes):
    """The negative control: the same site with /socket.io/ on the least_conn upstream. A polling
    session's requests then go to nodes that never saw its handshake (400), which is why the
    shipped site balances /socket.io/ by client address."""
    nodes = [parley() for _ in range(3)]
    n = nginx_nodes(nodes, sio_upstream="parleyd_nodes")
    results = [polling_session(n.port)[:2] for _ in range(10)]
    assert any(r != (200, 200) for r in results), results
