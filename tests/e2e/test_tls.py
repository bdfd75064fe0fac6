"""TLS directly in parleyd (--tls-cert/--tls-key): wss:// and https with a self-signed certificate
made at test time by `openssl req -x509`; clients verify it against that certificate."""

import os
import shutil
import ssl
import subprocess

import pytest

from conftest import HOST, parleyd_path
from nginxhelp import ProxyClient, http_request
from wsclient import HandshakeError


def make_cert(d, name):
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    if not os.access(openssl, os.X_OK):
        pytest.fail("openssl is not installed (apt-get install -y openssl)")
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                        "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    return cert, key


@pytest.fixture
def cert(tmp_data_root):
    return make_cert(tmp_data_root, "server")


@pytest.fixture
def tls_srv(parley, cert):
    return parley("--tls-cert", cert[0], "--tls-key", cert[1])


def ctx_for(cert_path):
    ctx = ssl.create_default_context(cafile=cert_path)  # verifies the chain and the host name
    return ctx


def wss_client(srv, cert_path, name=None):
    c = ProxyClient(HOST, srv.port, ssl_context=ctx_for(cert_path), server_hostname="localhost")
    srv.clients.append(c)
    if name:
        c.hello(name)
    return c


def test_wss_round_trip(tls_srv, cert):
    a = wss_client(tls_srv, cert[0], "alice")
    b = wss_client(tls_srv, cert[0], "bob")
    assert isinstance(a.sock, ssl.SSLSocket) and a.sock.version() is not None
    a.join("secure")
    assert b.join("secure")["members"] == 2
    seq = a.ok("publish", skip=True, room="secure", data={"text": "over tls"})["seq"]
    m = b.next_json()
    assert (m["type"], m["seq"], m["from"], m["data"]) == ("message", seq, "alice", {"text": "over tls"})
    # a message bigger than one TLS record (16 KiB) both ways
    a.backlog.clear()  # its own copy
    big = "y" * 50000
    b.ok("publish", skip=True, room="secure", data=big)
    assert a.next_json()["data"] == big


def test_wss_verifies_by_ip_address_too(tls_srv, cert):
    c = ProxyClient(HOST, tls_srv.port, ssl_context=ctx_for(cert[0]), server_hostname=HOST)
    tls_srv.clients.append(c)
    assert c.ok("ping")


def test_https_healthz_and_metrics(parley, cert):
    s = parley("--tls-cert", cert[0], "--tls-key", cert[1], "--public-metrics", "1")
    status, _, body = http_request(HOST, s.port, "/healthz", ssl_context=ctx_for(cert[0]),
                                   server_hostname="localhost")
    assert status == 200 and body.strip() == b"ok", (status, body)
    status, hdrs, body = http_request(HOST, s.port, "/metrics", ssl_context=ctx_for(cert[0]),
                                      server_hostname="localhost")
    assert status == 200 and b"parley_connections" in body, (status, body[:200])


def test_wrong_certificate_is_rejected_by_the_client(tls_srv, tmp_data_root):
    other, _ = make_cert(tmp_data_root, "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        ProxyClient(HOST, tls_srv.port, ssl_context=ctx_for(other), server_hostname="localhost")


def test_plain_http_on_the_tls_port_is_not_served(tls_srv):
    # Plain ws:// to the TLS port must not reach the protocol.
    with pytest.raises((HandshakeError, OSError)):
        c = ProxyClient(HOST, tls_srv.port, timeout=3)
        c.close_socket()
    assert tls_srv.running()


def run_parleyd(tmp_data_root, *flags):
    argv = [parleyd_path(), "--port", "0", "--host", HOST, "--admin-listen", "off",
            "--data-dir", os.path.join(tmp_data_root, "bad")] + list(flags)
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("parleyd %s kept running: a bad TLS setup must stop it" % " ".join(flags))


def test_cert_without_key_is_a_config_error(tmp_data_root, cert):
    r = run_parleyd(tmp_data_root, "--tls-cert", cert[0])
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert b"tls" in r.stderr.lower()


@pytest.mark.parametrize("what", ["missing-key-file", "missing-cert-file", "key-of-another-cert"])
def test_unusable_tls_files_stop_parleyd(tmp_data_root, cert, what):
    cert_path, key_path = cert
    if what == "missing-key-file":
        key_path = os.path.join(tmp_data_root, "nope.key")
    elif what == "missing-cert-file":
        cert_path = os.path.join(tmp_data_root, "nope.crt")
    else:
        key_path = make_cert(tmp_data_root, "other")[1]
    r = run_parleyd(tmp_data_root, "--tls-cert", cert_path, "--tls-key", key_path)
    assert r.returncode in (1, 2), (r.returncode, r.stderr)
    assert b"msg=listening" not in r.stderr
