"""--unix-socket / --unix-socket-mode / --no-tcp: parleyd on a Unix socket, alone and behind nginx."""

import os
import socket
import stat
import subprocess

import pytest

from conftest import HOST, parleyd_path
from nginxhelp import free_port, nginx, parley_unix, peers_logged, wait_next_peer  # noqa: F401


def sock_path(root, name="parleyd.sock"):
    return os.path.join(root, name)


def mode_of(path):
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode), "%s is not a socket" % path
    return stat.S_IMODE(st.st_mode)


def test_unix_socket_alongside_tcp(parley_unix, tmp_data_root):
    path = sock_path(tmp_data_root)
    s = parley_unix(path)
    assert mode_of(path) == 0o660, "default --unix-socket-mode is 0660, got %o" % mode_of(path)
    u = s.unix_client("alice")
    t = s.client("bob")  # TCP still listens
    u.join("r")
    t.join("r")
    seq = u.ok("publish", skip=True, room="r", data="over unix")["seq"]
    m = t.next_json()
    assert (m["type"], m["seq"], m["from"], m["data"]) == ("message", seq, "alice", "over unix")
    status, _, body = s.unix_http_get("/healthz")
    assert status == 200 and body.strip() == b"ok"


@pytest.mark.parametrize("mode", ["0600", "0640", "0666"])
def test_socket_mode_is_applied(parley_unix, tmp_data_root, mode):
    path = sock_path(tmp_data_root)
    s = parley_unix(path, "--unix-socket-mode", mode)
    assert mode_of(path) == int(mode, 8)
    assert s.unix_client().ok("ping")


def test_no_tcp_behind_nginx(parley_unix, nginx, tmp_data_root):
    path = sock_path(tmp_data_root)
    port = free_port()
    admin = os.path.join(os.path.dirname(path), "admin.sock")
    parley_unix(path, "--no-tcp", "1", "--port", port, "--unix-socket-mode", "0600",
                "--admin-listen", "unix:" + admin)
    assert mode_of(path) == 0o600
    with pytest.raises(OSError):
        socket.create_connection((HOST, port), timeout=2).close()

    n = nginx("unix:" + path, admin="unix:" + admin)
    a = n.client()
    a.hello("alice")
    b = n.client()
    b.hello("bob")
    a.join("lobby")
    b.join("lobby")
    seq = a.ok("publish", skip=True, room="lobby", data={"via": "unix"})["seq"]
    m = b.next_json()
    assert (m["type"], m["seq"], m["from"], m["data"]) == ("message", seq, "alice", {"via": "unix"})
    status, _, body = n.http_get("/healthz")
    assert status == 200 and body.strip() == b"ok", (status, body)
    status, _, body = n.http_get("/metrics")
    assert status == 200 and b"parley_connections" in body, (status, body[:200])


def test_no_tcp_without_unix_socket_is_refused(tmp_data_root):
    # A config error: exit status 2, at once.
    r = subprocess.run([parleyd_path(), "--no-tcp", "1", "--data-dir", os.path.join(tmp_data_root, "d")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert b"unix" in r.stderr.lower()


def test_stale_socket_file_is_replaced(parley_unix, tmp_data_root):
    # After kill -9 the socket file stays behind; the next start must not fail on it.
    path = sock_path(tmp_data_root)
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(path)
    old.close()  # the file remains, nobody listens
    assert os.path.exists(path)
    s = parley_unix(path, "--no-tcp", "1")
    assert s.unix_client().ok("ping")


def test_unix_socket_survives_many_connections(parley_unix, tmp_data_root):
    path = sock_path(tmp_data_root)
    s = parley_unix(path, "--no-tcp", "1")
    clients = [s.unix_client() for _ in range(50)]
    for c in clients:
        c.join("many")
    assert len(clients[0].ok("presence", room="many")["members"]) == 50
    d = clients[-1].ok("join", room="many")
    assert d["members"] == 50


def test_unix_socket_peer_is_trusted_proxy(parley_unix, nginx, tmp_data_root):
    # Connections on the Unix socket come from the local proxy: its X-Forwarded-For is believed
    # without --trusted-proxies, and a forged entry before nginx's own is still ignored.
    path = sock_path(tmp_data_root)
    s = parley_unix(path, "--no-tcp", "1")
    n = nginx("unix:" + path)
    seen = len(peers_logged(s))
    n.client(source="127.0.0.2", headers=["X-Forwarded-For: 203.0.113.9"])
    assert wait_next_peer(s, seen) == "127.0.0.2"
