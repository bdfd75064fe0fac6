"""Cluster over TLS (docs/cluster.md, "TLS to Redis"): `--cluster rediss://HOST:PORT` through parleyd's
TLS relay (cluster/tlsrelay.c) to a real redis-server with only a TLS port (--port 0 --tls-port P),
with certificates made here by the openssl CLI: a CA, a server certificate for 127.0.0.1/localhost, a
client certificate, and a second CA that signed none of them.

Two nodes over TLS (client certificate and AUTH password): cross-node publish, order, history, and
presence. Failing closed: a wrong CA, a server name mismatch, Redis requiring a client certificate and
none given, and rediss:// to a plain port all leave the node `unavailable` (as an unreachable Redis
does) with a log line naming the TLS error; plain redis:// to the TLS port is `unavailable` too, not
hung. Bad files refuse the start. Redis restarted under TLS: the nodes reconnect and keep working."""

import os
import shutil
import socket
import ssl
import subprocess
import time
import types

import pytest

from clusterhelp import HOST, Redis, _read_resp, cluster, history, metric, wait_for, wait_log  # noqa: F401
from conftest import tmp_data_root  # noqa: F401 (fixture)


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _ec_key_csr(d, name, cn):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)


def _ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".crt", "-days", "2", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign",
             cwd=d)


def _sign(d, name, ca, ext):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext + "\n")
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)


@pytest.fixture
def certs(tmp_data_root):
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed (scripts/deps.sh --test)")
    d = os.path.join(tmp_data_root, "certs")
    os.makedirs(d)
    _ca(d, "ca", "Parley Test CA")
    _ca(d, "other", "Some Other CA")
    _ec_key_csr(d, "server", "localhost")
    _sign(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    _ec_key_csr(d, "client", "parley-node")
    _sign(d, "client", "ca", "extendedKeyUsage=clientAuth")
    return types.SimpleNamespace(**{k: os.path.join(d, v) for k, v in {
        "ca": "ca.crt", "other_ca": "other.crt", "server_crt": "server.crt", "server_key": "server.key",
        "client_crt": "client.crt", "client_key": "client.key", "dir": "."}.items()})


class TlsRedis(Redis):
    """A redis-server with a TLS port only (--port 0): every client, parleyd's and this test's, speaks
    TLS. auth_clients: Redis's tls-auth-clients (yes: a client certificate is required)."""

    def __init__(self, root, certs, auth_clients="yes", password=None):
        self.certs = certs
        self.password = password
        tls = ["--tls-cert-file", certs.server_crt, "--tls-key-file", certs.server_key,
               "--tls-ca-cert-file", certs.ca, "--tls-auth-clients", auth_clients]
        if password:
            tls += ["--requirepass", password]
        self._tls = tls
        super().__init__(root, extra=tls)

    @property
    def url(self):
        return "rediss://%s:%d" % (HOST, self.port)

    def start(self, timeout=10.0):
        # Redis's own argv puts --port first: turn the plain port off, serve TLS on ours
        self.extra = ["--port", "0", "--tls-port", str(self.port)] + self._tls
        super().start(timeout)

    def cmd(self, *args, timeout=5.0):
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        ctx.load_cert_chain(self.certs.client_crt, self.certs.client_key)
        raw = socket.create_connection((HOST, self.port), timeout=timeout)
        s = ctx.wrap_socket(raw, server_hostname=HOST)
        try:
            cmds = ([("AUTH", self.password)] if self.password else []) + [args]
            out = b""
            for c in cmds:
                out += b"*%d\r\n" % len(c)
                for a in c:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            if self.password:
                _read_resp(f)
            return _read_resp(f)
        finally:
            s.close()


def tls_redis(cluster, certs, **kw):
    r = TlsRedis(cluster.root, certs, **kw)
    cluster._redis.append(r)
    return r


def client_flags(certs, ca=None):
    return ["--cluster-tls-ca", ca or certs.ca, "--cluster-tls-cert", certs.client_crt,
            "--cluster-tls-key", certs.client_key]


def test_two_nodes_over_tls_with_password(cluster, certs):
    redis = tls_redis(cluster, certs, password="s3cret-over-tls")
    pw = os.path.join(cluster.root, "redis.pass")
    with open(pw, "w") as f:
        f.write("s3cret-over-tls\n")
    a, b = [cluster.node(redis, *client_flags(certs), "--cluster-password-file", pw) for _ in range(2)]
    for n in (a, b):
        assert "tls=1" in n.log()
    # parleyd's connections are really there, over TLS (Redis has no plain port), named by node
    names = redis.cmd("CLIENT", "LIST")
    assert names.count("name=parley:node0:") == 2 and names.count("name=parley:node1:") == 2, names
    la, lb = a.client("la"), b.client("lb")
    la.join("room")
    lb.join("room")
    pa, pb = a.client("pa"), b.client("pb")
    pa.join("room", skip=True)
    pb.join("room", skip=True)
    seqs = []
    for i in range(30):
        p = pa if i % 2 == 0 else pb
        seqs.append(p.ok("publish", room="room", data={"i": i}, echo=False, skip=True)["seq"])
    assert seqs == list(range(1, 31))
    # every listener, on either node, sees all 30 in seq order
    for c in (la, lb):
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 30 and time.monotonic() < deadline:
            f = c.next_json(timeout=5)
            if f.get("type") == "message":
                got.append((f["seq"], f["data"]["i"]))
        assert got == [(i + 1, i) for i in range(30)]
    # the same history from both nodes
    ha, hb = history(la, "room"), history(lb, "room")
    assert [m["seq"] for m in ha] == list(range(1, 31))
    assert [(m["seq"], m["data"]) for m in ha] == [(m["seq"], m["data"]) for m in hb]
    # presence across nodes goes through the relay too: a's presence lists b's members
    def members():
        return sorted(m["user"] for m in la.ok("presence", room="room", skip=True)["members"])
    wait_for(lambda: members() == ["la", "lb", "pa", "pb"], 15, "presence of both nodes")
    names = redis.cmd("CLIENT", "LIST")
    assert sum(n.startswith("parley-presence") for n in
               [w[5:] for w in names.split() if w.startswith("name=")]) == 4, names


def test_wrong_ca_fails_closed(cluster, certs):
    redis = tls_redis(cluster, certs)
    n = cluster.node(redis, *client_flags(certs, ca=certs.other_ca), wait_ready=False)
    wait_log(n, "msg=cluster_tls_error", 15)
    assert "certificate verify failed" in n.log()
    # as with an unreachable Redis: the node runs, publishes fail with unavailable at once
    c = n.client("u")
    c.join("room")
    t0 = time.monotonic()
    assert c.err("publish", room="room", data={"x": 1}, echo=False) == "unavailable"
    assert time.monotonic() - t0 < 1
    assert metric(n, "parley_cluster_redis_connected") == 0
    assert "msg=cluster_ready" not in n.log()
    # nothing reached Redis past the handshake
    assert redis.cmd("EXISTS", "parley:meta") == 0


def test_server_name_mismatch_fails_closed(cluster, certs):
    redis = tls_redis(cluster, certs)
    n = cluster.node(redis, *client_flags(certs), "--cluster-tls-server-name", "redis.example.org",
                     wait_ready=False)
    wait_log(n, "msg=cluster_tls_error", 15)
    assert "hostname mismatch" in n.log(), n.log()
    c = n.client("u")
    c.join("room")
    assert c.err("publish", room="room", data={"x": 1}, echo=False) == "unavailable"
    assert "msg=cluster_ready" not in n.log()
    # the name the certificate does carry works (sent as SNI, checked against DNS:localhost)
    ok = cluster.node(redis, *client_flags(certs), "--cluster-tls-server-name", "localhost")
    assert "tls=1" in ok.log()


def test_client_certificate_required_and_missing(cluster, certs):
    redis = tls_redis(cluster, certs, auth_clients="yes")
    n = cluster.node(redis, "--cluster-tls-ca", certs.ca, wait_ready=False)
    wait_log(n, "msg=cluster_tls_error", 15)
    # Redis resets the connection or sends its "certificate required" alert, whichever the relay
    # reads first; the line says why either way
    assert "asked for a client certificate and none is set" in n.log(), n.log()
    c = n.client("u")
    c.join("room")
    assert c.err("publish", room="room", data={"x": 1}, echo=False) == "unavailable"
    assert "msg=cluster_ready" not in n.log()
    # with tls-auth-clients no, the same node options (no certificate) are enough
    redis2 = tls_redis(cluster, certs, auth_clients="no")
    cluster.node(redis2, "--cluster-tls-ca", certs.ca)


def test_plain_to_tls_port_and_tls_to_plain_port(cluster, certs):
    redis = tls_redis(cluster, certs)
    # plain redis:// at the TLS port: refused (unavailable), not hung
    plain = types.SimpleNamespace(url="redis://%s:%d" % (HOST, redis.port))
    n = cluster.node(plain, "--cluster-timeout-ms", "500", "--cluster-hold-ms", "1000", wait_ready=False)
    c = n.client("u")
    c.join("room")
    t0 = time.monotonic()
    assert c.err("publish", room="room", data={"x": 1}, echo=False) == "unavailable"
    assert time.monotonic() - t0 < 1
    time.sleep(1.5)
    assert "msg=cluster_ready" not in n.log()
    assert metric(n, "parley_cluster_redis_connected") == 0
    # rediss:// at a plain port: the handshake fails, named in the log
    plain_redis = cluster.redis()
    tls_url = types.SimpleNamespace(url="rediss://%s:%d" % (HOST, plain_redis.port))
    m = cluster.node(tls_url, "--cluster-tls-ca", certs.ca, wait_ready=False)
    wait_log(m, "msg=cluster_tls_error", 15)
    c2 = m.client("u")
    c2.join("room")
    assert c2.err("publish", room="room", data={"x": 1}, echo=False) == "unavailable"
    assert "msg=cluster_ready" not in m.log()


def test_bad_files_refuse_to_start(cluster, certs):
    redis = tls_redis(cluster, certs)
    junk = os.path.join(cluster.root, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    cases = [
        (["--cluster-tls-ca", os.path.join(cluster.root, "missing.pem")], "cluster_tls_ca"),
        (["--cluster-tls-ca", certs.ca, "--cluster-tls-cert", junk, "--cluster-tls-key", certs.client_key],
         "cluster_tls_cert"),
        # the server's key does not match the client's certificate
        (["--cluster-tls-ca", certs.ca, "--cluster-tls-cert", certs.client_crt,
          "--cluster-tls-key", certs.server_key], "cluster_tls_key"),
    ]
    for flags, text in cases:
        n = cluster.node(redis, *flags, wait_ready=False)
        wait_for(lambda: not n.running(), 10, "refusal")
        assert n.proc.returncode != 0
        assert text in n.log(), n.log()
        cluster.servers.remove(n)


def test_redis_restart_under_tls(cluster, certs):
    redis = tls_redis(cluster, certs)
    a, b = [cluster.node(redis, *client_flags(certs), "--cluster-timeout-ms", "1000",
                         "--cluster-hold-ms", "1000") for _ in range(2)]
    ca, cb = a.client("ca"), b.client("cb")
    ca.join("room")
    cb.join("room")
    assert ca.ok("publish", room="room", data={"i": 0}, echo=False, skip=True)["seq"] == 1
    redis.restart()   # SIGTERM (AOF written), then the same port, TLS only, again
    # the nodes notice, reconnect with backoff through the relay, and publish again
    for n in (a, b):
        wait_log(n, "msg=cluster_redis_lost", 15)

    def publish_ok():
        r = cb.request("publish", room="room", data={"i": 1}, key="after", echo=False, skip=True)
        cb.backlog.clear()
        return r["ok"] and r["data"]["seq"]

    s = wait_for(publish_ok, 30, "a publish after the restart")
    assert s == 2
    for c in (ca, cb):
        h = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(history(c, "room")), 15, "2 messages")
        assert [(m["seq"], m["data"]["i"]) for m in h] == [(1, 0), (2, 1)]


def test_large_messages_through_the_relay(cluster, certs):
    """Many near-max messages in flight at once: each is ~4 relay buffers (16 KiB each way), and an
    XREAD reply carries many of them, so both directions fill and drain their bounded buffers
    (backpressure) many times; every byte must come through, in order, on the other node."""
    redis = tls_redis(cluster, certs)
    # the listener reads only after every publish is acknowledged: its send queue must hold them all
    a, b = [cluster.node(redis, *client_flags(certs), "--send-queue-bytes", "16777216")
            for _ in range(2)]
    lb = b.client("lb")
    lb.join("big")
    pa = a.client("pa")
    pa.join("big", skip=True)
    n = 60
    body = lambda i: ("%03d" % i) * 20000  # 60,000 bytes
    ids = [pa.send_cmd("publish", room="big", data={"i": i, "b": body(i)}, echo=False) for i in range(n)]
    for cid in ids:
        rep = pa.wait_reply(cid, skip=True, timeout=30)
        assert rep["ok"] is True, rep
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        f = lb.next_json(timeout=10)
        if f.get("type") == "message":
            got.append(f)
    assert [f["seq"] for f in got] == list(range(1, n + 1))
    assert all(f["data"]["b"] == body(f["data"]["i"]) for f in got)
    assert [f["data"]["i"] for f in got] == list(range(n))
