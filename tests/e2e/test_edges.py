"""The edges of parleyd (issue 11): what real clients and hostile ones do before and around the
WebSocket protocol. Native TLS with real clients (curl's defaults, HTTP/2 offers, h2c upgrades),
malformed upgrades, the Origin allowlist failing closed, a frame header declaring 2^62 bytes,
close frames that survive a client still sending (lingering close), the admin listener, monotonic
deadlines, one key per client address, and a /metrics whose cost does not grow with load.
"""

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import HOST, parleyd_path
from nginxhelp import ProxyClient, http_request
from test_tls import make_cert
from wsclient import Close, HandshakeError, OP_TEXT, WSClient, _mask, encode_frame

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WEB_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web-client"))


def curl():
    exe = shutil.which("curl")
    if not exe:
        pytest.fail("curl is not installed (scripts/deps.sh installs it)")
    return exe


def curl_get(url, *opts):
    """(status, http_version, body) of one GET with curl (-k: the test certificate is self-signed)."""
    r = subprocess.run([curl(), "-sk", "--max-time", "10", "-o", "-", "-w", "\n%{http_code} %{http_version}",
                        *opts, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    out = r.stdout.decode("utf-8", "replace")
    body, _, tail = out.rpartition("\n")
    code, _, version = tail.partition(" ")
    return int(code), version, body


def raw_upgrade(port, lines, path="/ws", timeout=5.0):
    """Sends a hand-written upgrade request; returns (status, headers, first bytes). status None: the
    server closed without answering."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n" % (path, HOST, port, "".join(l + "\r\n" for l in lines))
        s.sendall(req.encode("latin-1"))
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if b"\r\n\r\n" not in data:
        return None, {}, data
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(head[0].split(" ")[1]), hdrs, data


def upgrade_lines(key=KEY, version="13", connection="Upgrade", extra=()):
    lines = ["Upgrade: websocket"]
    if connection is not None:
        lines.append("Connection: %s" % connection)
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    return lines + list(extra)


def metric(srv, name, **labels):
    status, _, body = srv.metrics_get()
    assert status == 200, status
    want = name + ("{%s}" % ",".join('%s="%s"' % kv for kv in sorted(labels.items())) if labels else "")
    for line in body.decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise AssertionError("no %s in /metrics" % want)


# ---------------------------------------------------------------------------------------- 1. TLS with real clients


@pytest.fixture
def cert(tmp_data_root):
    return make_cert(tmp_data_root, "server")


@pytest.mark.parametrize("opts", [(), ("--http2",), ("--http1.1",)], ids=["default", "http2", "http1.1"])
def test_curl_over_tls_gets_answers_and_parleyd_survives(parley, cert, opts):
    # curl's default offers h2 through ALPN, as browsers do; parleyd used to crash on it (SIGSEGV).
    s = parley("--tls-cert", cert[0], "--tls-key", cert[1], "--public-metrics", "1", "--web-root", WEB_ROOT)
    base = "https://127.0.0.1:%d" % s.port
    for _ in range(3):
        code, version, body = curl_get(base + "/healthz", *opts)
        assert (code, version, body) == (200, "1.1", "ok\n"), (code, version, body)
        code, version, body = curl_get(base + "/metrics", *opts)
        assert (code, version) == (200, "1.1") and "parley_connections" in body, (code, version, body[:200])
        code, version, body = curl_get(base + "/no-such-page", *opts)
        assert (code, version) == (404, "1.1"), (code, version, body[:200])
        code, _, body = curl_get(base + "/", *opts)
        assert code == 200 and "<html" in body.lower(), (code, body[:200])
    assert s.running()


def test_tls_alpn_offers_only_http11(parley, cert):
    s = parley("--tls-cert", cert[0], "--tls-key", cert[1])
    ctx = ssl.create_default_context(cafile=cert[0])
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((HOST, s.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            assert t.selected_alpn_protocol() == "http/1.1"
    # and a WebSocket client that offered h2 still gets its chat over HTTP/1.1
    c = ProxyClient(HOST, s.port, ssl_context=ctx, server_hostname="localhost")
    s.clients.append(c)
    assert c.ok("ping")
    assert s.running()


@pytest.mark.parametrize("path,status,body", [("/healthz", 200, "ok\n"), ("/nope", 400, None),
                                              ("/ws", 400, None), ("/", 400, None)])
def test_h2c_upgrade_is_answered_as_http11(parley, path, status, body):
    # curl --http2 on http:// asks for `Upgrade: h2c`; lws 4.1 would switch to HTTP/2, whose replies
    # break (a reset after the headers). parleyd answers the request itself, in HTTP/1.1.
    s = parley()
    code, version, got = curl_get("http://127.0.0.1:%d%s" % (s.port, path), "--http2")
    assert (code, version) == (status, "1.1"), (code, version, got[:200])
    if body is not None:
        assert got == body
    assert s.running()
    assert s.client().ok("ping")


# ---------------------------------------------------------------------------------------- 2. Origin fails closed


@pytest.mark.parametrize("length", [255, 256, 4000])
def test_foreign_origin_of_any_length_is_refused(parley, length):
    s = parley("--origins", "http://good.example")
    origin = "http://" + "a" * (length - len("http://"))
    assert len(origin) == length
    status, _, data = raw_upgrade(s.port, upgrade_lines(extra=["Origin: " + origin]))
    assert status == 403, (status, data[:200])
    # the allowed origin still gets in
    status, _, _ = raw_upgrade(s.port, upgrade_lines(extra=["Origin: http://good.example"]))
    assert status == 101


def test_allowed_origin_padded_past_the_buffer_is_refused(parley):
    # An allowed name followed by 300 bytes must not pass because the copy was cut to fit.
    s = parley("--origins", "http://good.example")
    status, _, _ = raw_upgrade(s.port, upgrade_lines(extra=["Origin: http://good.example" + "x" * 300]))
    assert status == 403


# ---------------------------------------------------------------------------------------- 3. malformed upgrades


@pytest.mark.parametrize("case,lines,want", [
    ("no_key", upgrade_lines(key=None), 400),
    ("short_key", upgrade_lines(key="abc"), 400),
    ("key_not_16_bytes", upgrade_lines(key="dGhlIHNhbXBsZSBub25jZQ"), 400),
    ("no_connection_upgrade", upgrade_lines(connection="keep-alive"), 400),
    ("no_connection_header", upgrade_lines(connection=None), 400),
    ("version_12", upgrade_lines(version="12"), 426),
    ("version_8", upgrade_lines(version="8"), 426),
    ("no_version", upgrade_lines(version=None), 426),
])
def test_malformed_upgrade_gets_a_4xx_never_silence(parley, case, lines, want):
    s = parley()
    status, hdrs, data = raw_upgrade(s.port, lines)
    assert status == want, "%s: want %d, got %r %r" % (case, want, status, data[:300])
    if want == 426:
        assert hdrs.get("sec-websocket-version") == "13", hdrs
    assert s.client().ok("ping")


def test_refused_upgrades_are_counted_by_status(parley):
    s = parley()
    raw_upgrade(s.port, upgrade_lines(key=None))
    raw_upgrade(s.port, upgrade_lines(version="12"))
    raw_upgrade(s.port, upgrade_lines(version="7"))
    assert metric(s, "parley_rejected_total", status="400") == 1
    assert metric(s, "parley_rejected_total", status="426") == 2
    assert "status=426" in s.log()


def test_connection_header_with_several_tokens_is_accepted(parley):
    s = parley()
    status, _, _ = raw_upgrade(s.port, upgrade_lines(connection="keep-alive, Upgrade"))
    assert status == 101


# ---------------------------------------------------------------------------------------- 4. 2^62-byte frame header


@pytest.mark.parametrize("payload", [b"x", b"\xff\xfe", b'{"type":"ping","id":1}'])
def test_frame_declaring_2_62_bytes_is_closed_1009_at_once(srv, payload):
    c = srv.client()
    key = os.urandom(4)
    t0 = time.monotonic()
    c.send_raw(struct.pack("!BBQ", 0x81, 0x80 | 127, 2 ** 62) + key + _mask(key, payload))
    close, _ = c.recv_close(timeout=5)
    assert isinstance(close, Close) and close.code == 1009, close
    assert time.monotonic() - t0 < 1.0, "1009 took %.1f s" % (time.monotonic() - t0)


def test_second_fragment_declaring_too_much_is_closed_1009_at_once(srv):
    c = srv.client()
    key = os.urandom(4)
    first = encode_frame(OP_TEXT, b'{"type":"ping",', fin=False)
    c.send_raw(first + struct.pack("!BBQ", 0x00, 0x80 | 127, 70000) + key + _mask(key, b"x"))
    close, _ = c.recv_close(timeout=5)
    assert close.code == 1009, close


# ---------------------------------------------------------------------------------------- 6. close frames under load


def test_client_flooding_past_the_rate_limit_sees_4029_five_times_in_five(parley):
    s = parley("--rate-messages", "1000", "--rate-burst", "2000", "--rate-joins", "20")
    wire = b"".join(encode_frame(OP_TEXT, '{"type":"join","id":%d,"room":"flood"}' % i)
                    for i in range(1, 5001))
    ping = encode_frame(OP_TEXT, '{"type":"ping"}')
    got = []
    for _ in range(5):
        c = s.raw_client()
        stop = threading.Event()

        def send():
            try:
                c.sock.sendall(wire)
                while not stop.is_set():  # keeps sending after the close, as a flood does
                    c.sock.sendall(ping)
                    time.sleep(0.001)
            except OSError:
                pass

        t = threading.Thread(target=send)
        t.start()
        try:
            close, _ = c.recv_close(timeout=10)
        except OSError as e:  # a reset before the close frame was read
            close = e
        stop.set()
        t.join(10)
        c.close_socket()
        got.append(close)
    assert all(isinstance(x, Close) and x.code == 4029 for x in got), got
    assert "reason=rate_limited" in s.log()


def test_sigterm_with_40_clients_still_publishing_all_see_1001(parley):
    # 40 members of one room, each publishing: every client has output queued towards it and input
    # on its way in when SIGTERM comes. The 1001 must reach all of them (the send queues are large
    # so that nobody is closed as a slow consumer instead).
    s = parley("--send-queue-messages", "1000000", "--send-queue-bytes", "1000000000")
    clients = []
    for i in range(40):
        c = s.client()
        c.join("busy", skip=True)
        clients.append(c)
    results = [None] * len(clients)
    publishing = threading.Barrier(len(clients) + 1)

    def publish_and_read(i, c):
        # Publishes without waiting for replies, and reads everything until the close frame (or a
        # reset, which is the failure this test is about).
        done = threading.Event()

        def writer():
            n = 0
            try:
                while not done.is_set():
                    n += 1
                    c.send_raw(encode_frame(OP_TEXT, '{"type":"publish","room":"busy","data":%d}' % n))
                    if n == 10:
                        publishing.wait(10)
                    time.sleep(0.005)
            except (OSError, threading.BrokenBarrierError):
                pass
        w = threading.Thread(target=writer)
        w.start()
        try:
            results[i] = c.recv_close(timeout=30)[0]
        except OSError as e:
            results[i] = e
        finally:
            done.set()
            w.join(20)

    threads = [threading.Thread(target=publish_and_read, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    publishing.wait(20)  # every client has published 10 and is still going
    time.sleep(0.5)
    s.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(40)
    assert s.proc.wait(15) == 0
    bad = [(i, r) for i, r in enumerate(results) if not (isinstance(r, Close) and r.code == 1001)]
    assert not bad, "%d of 40 did not see 1001: %r" % (len(bad), bad[:5])


def test_lingering_socket_closes_when_the_peer_stops_sending(parley):
    # After the close frame parleyd reads and discards until the peer hangs up or 2 s pass: a
    # client that keeps the socket open and silent is let go after about 2 s.
    s = parley("--rate-messages", "10", "--rate-burst", "10")
    c = s.raw_client()
    c.send_raw(b"".join(encode_frame(OP_TEXT, '{"type":"ping","id":%d}' % i) for i in range(100)))
    close, _ = c.recv_close(timeout=5)
    assert close.code == 4029
    t0 = time.monotonic()
    c.sock.settimeout(6)
    assert c.sock.recv(10) == b"", "write side shut down: EOF after the close frame"
    assert time.monotonic() - t0 < 3.0
    deadline = time.monotonic() + 6
    while metric(s, "parley_lingering_sockets") != 0:
        assert time.monotonic() < deadline, "still lingering after 6 s"
        time.sleep(0.1)
    assert metric(s, "parley_lingering_closes_total") >= 1


# ---------------------------------------------------------------------------------------- 7. admin listener


def test_metrics_are_on_the_admin_listener_not_the_public_one(srv):
    status, _, body = srv.http_get("/metrics")
    assert status == 404, (status, body[:200])
    status, hdrs, body = srv.metrics_get()
    assert status == 200 and b"parley_connections" in body, (status, body[:200])
    assert hdrs.get("content-type", "").startswith("text/plain; version=0.0.4")
    status, _, body = srv.http_get("/healthz", port=srv.admin_port)
    assert (status, body) == (200, b"ok\n")
    status, _, body = srv.http_get("/", port=srv.admin_port)
    assert status == 404, "the admin listener serves no files"
    status, _, body = srv.http_get("/healthz")
    assert (status, body) == (200, b"ok\n"), "health checks stay on the public listener"


def test_admin_listener_refuses_websockets(srv):
    with pytest.raises(HandshakeError) as e:
        WSClient(HOST, srv.admin_port, path="/ws", timeout=5)
    assert e.value.status == 404


def test_public_metrics_flag_serves_metrics_on_the_public_listener(parley):
    s = parley("--public-metrics", "1")
    status, _, body = s.http_get("/metrics")
    assert status == 200 and b"parley_connections" in body


def test_admin_listen_off_has_no_admin_listener(parley):
    s = parley("--admin-listen", "off")
    assert "msg=admin_listening" not in s.log()
    assert s.http_get("/metrics")[0] == 404
    assert s.client().ok("ping")


def test_admin_listen_on_a_unix_socket(parley, tmp_data_root):
    path = os.path.join(tmp_data_root, "admin.sock")
    s = parley("--admin-listen", "unix:" + path)
    status, _, body = http_request("localhost", 0, "/metrics", unix_path=path)
    assert status == 200 and b"parley_connections" in body


@pytest.mark.parametrize("value", ["9180", "localhost", "127.0.0.1:99999", "unix:relative.sock", "[::1]9180", ""])
def test_bad_admin_listen_is_a_config_error(tmp_data_root, value):
    r = subprocess.run([parleyd_path(), "--port", "0", "--host", HOST, "--admin-listen", value,
                        "--data-dir", os.path.join(tmp_data_root, "d")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 2, (value, r.returncode, r.stderr)
    assert b"admin_listen" in r.stderr or b"admin-listen" in r.stderr


def test_admin_listen_default_is_loopback_9180():
    r = subprocess.run([parleyd_path(), "--help"], stdout=subprocess.PIPE, timeout=10)
    assert b"--admin-listen" in r.stdout and b"127.0.0.1:9180" in r.stdout
    assert b"--public-metrics" in r.stdout


def test_admin_port_in_use_stops_parleyd(parley, tmp_data_root):
    a = parley()
    r = subprocess.run([parleyd_path(), "--port", "0", "--host", HOST, "--admin-listen",
                        "%s:%d" % (HOST, a.admin_port), "--data-dir", os.path.join(tmp_data_root, "d2")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert b"admin_listen" in r.stderr


# ---------------------------------------------------------------------------------------- 8. monotonic deadlines


def faketime_lib():
    for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
              "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
        if os.path.exists(p):
            return p
    pytest.fail("libfaketime is not installed (scripts/deps.sh --test installs it)")


@pytest.mark.parametrize("jump", ["-1h", "+1h"])
def test_auth_timeout_ignores_wall_clock_steps(parley, tmp_data_root, monkeypatch, jump):
    # The wall clock (CLOCK_REALTIME only: DONT_FAKE_MONOTONIC) steps by an hour after the client
    # connected. Back: a wall-clock deadline would let it stay an hour. Forward: it would be cut at once.
    spec = os.path.join(tmp_data_root, "faketime")
    with open(spec, "w") as f:
        f.write("+0\n")
    secret = os.path.join(tmp_data_root, "secret")
    with open(secret, "w") as f:
        f.write("s" * 32)
    os.chmod(secret, 0o600)
    monkeypatch.setenv("LD_PRELOAD", faketime_lib())
    monkeypatch.setenv("FAKETIME_TIMESTAMP_FILE", spec)
    monkeypatch.setenv("FAKETIME_NO_CACHE", "1")
    monkeypatch.setenv("DONT_FAKE_MONOTONIC", "1")
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    s = parley("--auth", "token", "--auth-secret-file", secret, "--auth-timeout", "3")
    monkeypatch.delenv("LD_PRELOAD")
    c = s.raw_client()
    t0 = time.monotonic()
    time.sleep(0.3)
    with open(spec, "w") as f:
        f.write(jump + "\n")
    close, _ = c.recv_close(timeout=8)
    took = time.monotonic() - t0
    assert close.code == 4001, close
    assert 2.5 <= took <= 5.0, "closed after %.1f s, want the 3 s auth_timeout" % took


# ---------------------------------------------------------------------------------------- 9. one key per address


@pytest.mark.parametrize("spellings", [
    ["2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:0:0:0:1"],
    ["192.0.2.7", "::ffff:192.0.2.7", "0000:0000:0000:0000:0000:ffff:192.0.2.7"],
    ["2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", "2001:0db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
     "2001:0DB8:AAAA:BBBB:CCCC:DDDD:EEEE:FFFF"],
], ids=["v6_zeros", "v4_mapped_45_chars", "v6_full"])
def test_per_address_limit_holds_for_every_spelling_of_an_address(parley, spellings):
    s = parley("--trusted-proxies", "127.0.0.1", "--max-connections-per-ip", "2")
    a = ProxyClient(HOST, s.port, headers=["X-Forwarded-For: " + spellings[0]])
    b = ProxyClient(HOST, s.port, headers=["X-Forwarded-For: " + spellings[1]])
    s.clients += [a, b]
    with pytest.raises(HandshakeError) as e:
        ProxyClient(HOST, s.port, headers=["X-Forwarded-For: " + spellings[2]])
    assert e.value.status == 429
    peers = [line for line in s.log().splitlines() if "msg=connect " in line]
    assert len({line.split("peer=")[1].split()[0] for line in peers}) == 1, peers
    a.close_socket()
    deadline = time.monotonic() + 5
    while True:  # the freed slot is usable again, under any spelling
        try:
            c = ProxyClient(HOST, s.port, headers=["X-Forwarded-For: " + spellings[2]])
            s.clients.append(c)
            break
        except HandshakeError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------- 10. /metrics cost


def fds_of(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_open_fds_gauge_is_counted_and_matches_the_process(parley):
    s = parley()
    base = metric(s, "process_open_fds")
    assert abs(base - fds_of(s.proc.pid)) <= 3, (base, fds_of(s.proc.pid))
    clients = [s.client() for _ in range(50)]
    for c in clients:
        c.ok("ping")
    n = metric(s, "process_open_fds")
    assert abs(n - fds_of(s.proc.pid)) <= 3, (n, fds_of(s.proc.pid))
    assert n - base >= 49
    assert metric(s, "process_max_fds") > 0


def test_scrape_does_not_list_the_descriptor_table(parley, tmp_data_root):
    # Listing /proc/self/fd costs O(connections) on the loop at every scrape.
    strace = shutil.which("strace")
    if not strace:
        pytest.fail("strace is not installed (scripts/deps.sh --test installs it)")
    s = parley()
    clients = [s.client() for _ in range(20)]
    out = os.path.join(tmp_data_root, "strace.txt")
    tr = subprocess.Popen([strace, "-f", "-e", "trace=openat,open", "-o", out, "-p", str(s.proc.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # attached
        for _ in range(5):
            assert s.metrics_get()[0] == 200
        time.sleep(0.3)
    finally:
        tr.send_signal(signal.SIGINT)
        tr.wait(10)
    with open(out) as f:
        text = f.read()
    assert "/proc/self/fd" not in text, [l for l in text.splitlines() if "/proc/self/fd" in l][:3]
    assert len(clients) == 20
