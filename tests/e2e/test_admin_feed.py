"""GET /api/admin/feed, the /admin dashboard's live feed (Server-Sent Events): ticket auth, one
sample a second with the documented fields, admin_feed_max, and a client that does not read is
dropped."""

import json
import socket
import time

import apihelp
from apihelp import KEY1, Api

FIELDS = {"t", "connections", "users", "rooms", "msgs_in_s", "deliveries_out_s", "bytes_out_s",
          "slow_closes_s", "rate_limited_s", "refused_upgrades_s", "totals", "sendq_depth",
          "storage", "cache_bytes", "feed_clients", "top_members", "top_rate", "cluster"}


def ticket(a):
    t = a.ok("POST", "/api/admin/ticket")
    assert len(t["ticket"]) == 32 and t["expires_in_ms"] == 30000
    return t["ticket"]


class Feed:
    """One raw HTTP connection to the feed; events() parses the SSE stream."""

    def __init__(self, srv, tk, rcvbuf=None, timeout=5.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", srv.api_port))
        q = "?ticket=%s" % tk if tk is not None else ""
        self.s.sendall(("GET /api/admin/feed%s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
                        % q).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            assert d, "closed before the head"
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}

    def event(self):
        while b"\n\n" not in self.buf:
            d = self.s.recv(65536)
            assert d, "the feed closed"
            self.buf += d
        ev, self.buf = self.buf.split(b"\n\n", 1)
        assert ev.startswith(b"data: ")
        return json.loads(ev[6:]), time.monotonic()

    def body_json(self):
        n = int(self.headers["content-length"])
        while len(self.buf) < n:
            self.buf += self.s.recv(65536)
        return json.loads(self.buf[:n])

    def close(self):
        self.s.close()


def test_feed_needs_a_ticket(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    # the ticket needs the key
    assert a.request("POST", "/api/admin/ticket", key=None)[0] == 401
    assert a.request("POST", "/api/admin/ticket", key="wrong-key-0123456789")[0] == 401
    # no ticket, a made-up one, a key in the bearer header instead of a ticket: 401
    for tk in (None, "0" * 32, "abc"):
        f = Feed(srv, tk)
        assert f.status == 401 and f.body_json()["error"]["code"] == "unauthenticated"
        f.close()
    assert a.request("GET", "/api/admin/feed")[0] == 401
    tk = ticket(a)
    f = Feed(srv, tk)
    assert f.status == 200 and f.headers["content-type"] == "text/event-stream"
    assert f.headers["cache-control"] == "no-store"
    f.event()
    # a ticket opens one stream
    g = Feed(srv, tk)
    assert g.status == 401
    g.close()
    f.close()
    # the API off (no keys): no feed either
    srv2 = parley("--admin-listen", "127.0.0.1:0")
    srv2.api_port = apihelp.api_port(srv2)
    f = Feed(srv2, "0" * 32)
    assert f.status == 404
    f.close()


def test_feed_one_sample_a_second(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    alice, bob = srv.client("alice"), srv.client("bob")
    alice.join("busy")
    bob.join("busy")
    bob.join("quiet")
    f = Feed(srv, ticket(a))
    first, _ = f.event()  # sent at once
    assert FIELDS <= set(first), FIELDS - set(first)
    assert first["connections"] == 2 and first["feed_clients"] == 1
    assert set(first["sendq_depth"]) == {"0", "1-9", "10-99", "100-999", "1000+"}
    assert sum(first["sendq_depth"].values()) == 2
    assert {"queue_depth", "commit_ms", "failing"} <= set(first["storage"])
    assert {"slow_closes", "rate_limited", "refused_upgrades"} == set(first["totals"])
    assert first["top_members"][0] == {"room": "busy", "members": 2, "connections": 2}
    assert first["cluster"] is None  # a single node (test_cluster_admin_feed.py: a cluster)
    # traffic: persisted publishes to "busy"
    for i in range(20):
        a.ok("POST", "/api/publish", {"room": "busy", "data": i})
    times, samples = [], []
    seen_traffic = False
    for _ in range(5):
        s, t = f.event()
        assert FIELDS <= set(s)
        times.append(t)
        samples.append(s)
        if s["deliveries_out_s"] > 0:  # API publishes are not protocol messages in
            seen_traffic = True
            assert s["top_rate"][0]["room"] == "busy" and s["top_rate"][0]["msgs_s"] > 0
            assert s["bytes_out_s"] > 0
        for i in range(10):
            a.ok("POST", "/api/publish", {"room": "busy", "data": i})
    assert seen_traffic, samples
    gaps = [b - x for x, b in zip(times[1:], times[2:])]  # after the first timer sample
    assert all(0.7 < g < 1.5 for g in gaps), gaps
    ts = [s["t"] for s in samples[1:]]
    assert all(800 < b - x < 1300 for x, b in zip(ts, ts[1:])), ts
    f.close()


def test_feed_max_clients(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--admin-feed-max", "2")
    a = Api(srv)
    f1, f2 = Feed(srv, ticket(a)), Feed(srv, ticket(a))
    assert f1.status == 200 and f2.status == 200
    assert f2.event()[0]["feed_clients"] == 2
    f3 = Feed(srv, ticket(a))
    assert f3.status == 503 and f3.body_json()["error"]["code"] == "overloaded"
    f3.close()
    # one goes: a place is free again (once the server saw the close)
    f1.close()

    def reopened():
        f = Feed(srv, ticket(a))
        if f.status == 200:
            return f
        f.close()
        return None
    deadline = time.monotonic() + 5
    f4 = None
    while f4 is None and time.monotonic() < deadline:
        f4 = reopened()
        if f4 is None:
            time.sleep(0.1)
    assert f4 is not None, "no place after a feed client left"
    assert f4.event()[0]["feed_clients"] == 2
    f2.close()
    f4.close()


def test_feed_client_that_does_not_read_is_dropped(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    # big samples: rooms with long names fill both top lists
    clients = []
    for i in range(5):
        c = srv.client("u%d" % i)
        name = ("r%d-" % i) + "x" * 120
        c.join(name)
        clients.append((c, name))
    good = Feed(srv, ticket(a))
    lazy = Feed(srv, ticket(a), rcvbuf=4096)
    size = len(json.dumps(good.event()[0]))
    assert size > 1200, size
    t0 = time.monotonic()
    deadline = t0 + 60
    while "msg=feed_drop" not in srv.log() and time.monotonic() < deadline:
        for i, (c, name) in enumerate(clients):
            a.ok("POST", "/api/publish", {"room": name, "data": i})
        good.event()  # the reading client keeps up all along
    assert "msg=feed_drop reason=not_reading" in srv.log()
    # the lazy one's connection is closed: reading drains what was buffered, then EOF
    lazy.s.settimeout(5)
    while lazy.s.recv(65536):
        pass
    # the reading client still gets samples, and counts one feed client
    for _ in range(3):
        s, _ = good.event()
    assert s["feed_clients"] == 1
    good.close()
    lazy.close()


def test_feed_open_at_shutdown(parley, tmp_path):
    """SIGTERM with a feed open: parleyd ends the stream and exits 0 (no leak, no wait for it)."""
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    f = Feed(srv, ticket(a))
    f.event()
    a.close()
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < 5
    f.s.settimeout(5)
    while f.s.recv(65536):
        pass
    f.close()


def test_ticket_bounds(parley, tmp_path):
    """At most 16 tickets outstanding: the 17th replaces the one closest to expiry (the first)."""
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    tks = [ticket(a) for _ in range(17)]
    assert len(set(tks)) == 17
    f = Feed(srv, tks[0])
    assert f.status == 401  # replaced by the 17th
    f.close()
    for tk in (tks[1], tks[16]):
        f = Feed(srv, tk)
        assert f.status == 200
        f.event()
        f.close()


def test_ticket_expires_after_30s(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    early, late = ticket(a), ticket(a)
    t0 = time.monotonic()
    time.sleep(28.5)
    f = Feed(srv, early)  # just inside the 30 s
    assert f.status == 200, time.monotonic() - t0
    f.close()
    time.sleep(max(0, 31.0 - (time.monotonic() - t0)))
    g = Feed(srv, late)  # just past them
    assert g.status == 401
    g.close()
