"""Abuse limits: per-connection rate limits (rate_limited, then 4029), origin allowlist (403),
connection limits (503 overall, 429 per address)."""

import socket
import time

from conftest import HOST


def upgrade_status(port, origin=None, path="/ws"):
    """Sends a WebSocket upgrade request and returns the HTTP status code of the answer."""
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               % (path, HOST, port))
        if origin:
            req += "Origin: %s\r\n" % origin
        s.sendall((req + "\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1])
    finally:
        s.close()


def test_rate_limit_answers_rate_limited_then_recovers(parley):
    s = parley("--rate-messages", "20", "--rate-burst", "20")
    c = s.client()
    ids = [c.send_cmd("ping") for _ in range(40)]
    codes = []
    for i in ids:
        r = c.wait_reply(i)
        codes.append("ok" if r["ok"] else r["error"]["code"])
    assert codes.count("ok") >= 20 and "rate_limited" in codes, codes
    assert set(codes) <= {"ok", "rate_limited"}
    time.sleep(1.2)  # the bucket refills
    assert c.ok("ping")


def test_client_that_keeps_going_is_closed_4029(parley):
    s = parley("--rate-messages", "10", "--rate-burst", "10")
    c = s.client()
    other = s.client("other")
    for _ in range(200):
        try:
            c.send_cmd("ping")
        except OSError:
            break
    close, _ = c.recv_close(timeout=5)
    assert close.code == 4029, close
    assert other.ok("ping")  # everyone else is served


def test_join_rate_limit(parley):
    # The join burst is max(2 x rate_joins, max_rooms): here max(2, 8) = 8. Eight joins pass at once
    # (a reconnect re-joins every room); re-joins past that (no too_many_rooms involved) are limited.
    s = parley("--rate-joins", "1", "--max-rooms", "8", "--rate-burst", "100")
    c = s.client()
    codes = [c.request("join", room="r%d" % i) for i in range(8)]
    assert all(r["ok"] is True for r in codes), codes
    codes = [c.request("join", room="r0") for _ in range(4)]
    assert any(r["ok"] is False and r["error"]["code"] == "rate_limited" for r in codes), codes


def test_join_burst_is_twice_the_rate_when_that_is_more_than_max_rooms(parley):
    s = parley("--rate-joins", "6", "--max-rooms", "3", "--rate-burst", "100")
    c = s.client()
    codes = [c.request("join", room="r%d" % (i % 3)) for i in range(12)]
    assert all(r["ok"] is True for r in codes), codes  # 2 x 6 = 12 joins in the burst
    codes = [c.request("join", room="r0") for _ in range(6)]
    assert any(r["ok"] is False and r["error"]["code"] == "rate_limited" for r in codes), codes


def test_name_change_limit(parley):
    s = parley("--rate-names", "3")
    c = s.client()
    codes = [c.request("hello", name="n%d" % i) for i in range(6)]
    assert [r["ok"] for r in codes[:3]] == [True] * 3
    assert codes[-1]["ok"] is False and codes[-1]["error"]["code"] == "rate_limited"


def test_origin_allowlist(parley):
    s = parley("--origins", "https://chat.example.com,https://example.org")
    assert upgrade_status(s.port, origin="https://evil.example.net") == 403
    assert upgrade_status(s.port, origin="https://chat.example.com") == 101
    assert upgrade_status(s.port) == 101  # no Origin: not a browser


def test_max_connections_503(parley):
    s = parley("--max-connections", "3")
    cs = [s.client() for _ in range(3)]
    assert upgrade_status(s.port) == 503
    cs[0].close_socket()
    deadline = time.monotonic() + 5
    while upgrade_status(s.port) != 101:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_max_connections_per_ip_429(parley):
    s = parley("--max-connections-per-ip", "2")
    a, b = s.client(), s.client()
    assert upgrade_status(s.port) == 429
    assert a.ok("ping") and b.ok("ping")


def test_wrong_path_is_404(parley):
    s = parley()
    assert upgrade_status(s.port, path="/chat") == 404
