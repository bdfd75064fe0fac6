"""--reuse-port (issue 13): several parleyd bind one public port with SO_REUSEPORT, each its own
process, with no proxy. The kernel spreads new connections over them; each node keeps its own admin
listener (a port or a Unix socket) for /metrics and /healthz; a node that drains leaves the group at
once, so new connections only reach the others; and the default admin listener is refused, since
every node would claim it. (Cross-node delivery with --cluster: test_cluster_reuse_port.py.)
"""

import os
import re
import signal
import ssl
import subprocess
import time

import pytest

from conftest import HOST, parleyd_path
from nginxhelp import http_request
from test_tls import make_cert
from wsclient import WSClient


def metric(srv, name, unix_path=None):
    """The value of an unlabelled metric on srv's admin listener (TCP port, or unix_path)."""
    if unix_path:
        status, _, body = http_request("localhost", 0, "/metrics", unix_path=unix_path)
    else:
        status, _, body = srv.metrics_get()
    assert status == 200
    m = re.search(rb"^%s (\d+)$" % name.encode(), body, re.M)
    assert m, "no %s in /metrics" % name
    return int(m.group(1))


def start_nodes(parley, n, *flags):
    """n parleyd sharing one port: the first picks it (--port 0), the others join it."""
    first = parley("--reuse-port", "1", *flags)
    nodes = [first] + [parley("--reuse-port", "1", "--port", first.port, *flags) for _ in range(n - 1)]
    for s in nodes:
        assert s.port == first.port
        assert "msg=reuse_port port=%d" % first.port in s.log()
    return nodes


def test_three_nodes_share_one_port_and_the_kernel_spreads_connections(parley):
    nodes = start_nodes(parley, 3)
    clients = [WSClient(HOST, nodes[0].port, timeout=5.0) for _ in range(60)]
    for c in clients:
        assert c.recv_json()["type"] == "welcome"
    per_node = [metric(s, "parley_connections") for s in nodes]
    assert sum(per_node) == 60, per_node
    # 60 connections hashed over 3 sockets: all on one node has probability 3 * 3^-60.
    assert sum(1 for n in per_node if n > 0) >= 2, per_node
    for c in clients:
        c.close_socket()


def test_a_node_on_a_unix_admin_socket_shares_the_port(parley, tmp_data_root):
    path = os.path.join(tmp_data_root, "admin-b.sock")
    a = parley("--reuse-port", "1")
    b = parley("--reuse-port", "1", "--port", a.port, "--admin-listen", "unix:" + path)
    clients = [WSClient(HOST, a.port, timeout=5.0) for _ in range(40)]
    for c in clients:
        assert c.recv_json()["type"] == "welcome"
    na, nb = metric(a, "parley_connections"), metric(b, "parley_connections", unix_path=path)
    assert na + nb == 40 and na > 0 and nb > 0, (na, nb)
    status, _, _ = http_request("localhost", 0, "/healthz", unix_path=path)
    assert status == 200
    for c in clients:
        c.close_socket()


def test_a_draining_node_leaves_the_group_and_new_connections_reach_the_others(parley):
    nodes = start_nodes(parley, 2)
    # A client on the first node keeps it draining (its drain waits for the client to go).
    held = []
    while metric(nodes[0], "parley_connections") == 0:
        c = WSClient(HOST, nodes[0].port, timeout=5.0)
        assert c.recv_json()["type"] == "welcome"
        held.append(c)
        assert len(held) < 200
    base = metric(nodes[1], "parley_connections")  # held clients that landed there
    nodes[0].send_signal(signal.SIGTERM)
    # Wait for the drain to begin (the log line comes before the listener closes, in the same
    # callback: once it is written, the loop has closed it too or is about to; poll until closed).
    deadline = time.monotonic() + 5
    while "msg=draining" not in nodes[0].log():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert nodes[0].running()
    # Every new connection lands on the node still serving: none refused, none on the drainer.
    fresh = [WSClient(HOST, nodes[1].port, timeout=5.0) for _ in range(30)]
    for c in fresh:
        assert c.recv_json()["type"] == "welcome"
    # All 30 on the serving node (the drainer's admin listener refuses while it drains).
    assert metric(nodes[1], "parley_connections") == base + 30
    for c in held + fresh:
        c.close_socket()
    assert nodes[0].stop() == 0


def test_reuse_port_with_the_default_admin_listener_is_refused():
    exe = parleyd_path()
    r = subprocess.run([exe, "--check-config", "--reuse-port", "1"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 2
    assert b"reuse_port = 1 needs a per-node admin_listen" in r.stderr
    # An explicit admin listener of its own, or none, is fine.
    for admin in ("127.0.0.1:9181", "unix:/run/parley/a.sock", "off"):
        r = subprocess.run([exe, "--check-config", "--reuse-port", "1", "--admin-listen", admin],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        assert r.returncode == 0, r.stderr


def test_reuse_port_in_a_cluster_needs_a_node_id():
    exe = parleyd_path()
    base = [exe, "--check-config", "--reuse-port", "1", "--admin-listen", "127.0.0.1:9181",
            "--cluster", "redis://127.0.0.1:6379"]
    r = subprocess.run(base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 2 and b"reuse_port = 1 in a cluster needs node_id" in r.stderr, r.stderr
    r = subprocess.run(base + ["--node-id", "web1-9181"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    assert r.returncode == 0, r.stderr


def test_reuse_port_needs_an_address_not_an_interface_name(parley):
    with pytest.raises(AssertionError, match="reuse_port needs host to be an IP address"):
        parley("--reuse-port", "1", "--host", "lo")


def test_two_nodes_without_reuse_port_cannot_share_the_port(parley):
    """The other side of the boundary: a node without the flag is refused on a shared port (both
    must set SO_REUSEPORT), so a forgotten flag fails loudly instead of splitting traffic."""
    a = parley("--reuse-port", "1")
    with pytest.raises(AssertionError, match="cannot listen"):
        parley("--port", a.port)


def test_tls_with_reuse_port(parley, tmp_data_root):
    cert, key = make_cert(tmp_data_root, "server")
    a, b = start_nodes(parley, 2, "--tls-cert", cert, "--tls-key", key)
    """Both nodes terminate TLS on the shared port: 20 requests all answered (all 20 on one node has
    probability 2^-19, so each node answered some)."""
    ctx = ssl.create_default_context(cafile=cert)
    for _ in range(20):
        status, _, body = http_request(HOST, a.port, "/healthz", ssl_context=ctx,
                                       server_hostname="localhost")
        assert status == 200, body
