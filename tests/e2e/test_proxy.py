"""parleyd behind a real nginx running the shipped deploy/nginx.conf; trusted_proxies and client addresses.

Client addresses: the test client binds 127.0.0.2 (any 127/8 address works on Linux loopback) while nginx
reaches parleyd from 127.0.0.1, so "the real client" and "the proxy" are distinguishable in parleyd's
`msg=connect ... peer=ADDR` debug line.
"""

import ipaddress
import os

import pytest

from conftest import HOST
from wsclient import HandshakeError
from nginxhelp import nginx, peers_logged, ProxyClient, wait_next_peer, http_request  # noqa: F401

CLIENT_ADDR = "127.0.0.2"   # the browser, as nginx sees it
SPOOF = "X-Forwarded-For: 203.0.113.9"
WEB_CLIENT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "web-client"))


def upstream(srv):
    return "%s:%d" % (HOST, srv.port)


# ---------------------------------------------------------------------------------------- through nginx


def test_websocket_round_trip_through_nginx(parley, nginx):
    s = parley()
    n = nginx(upstream(s))
    a = n.client()
    assert a.welcome["server"].startswith("parley/")
    assert a.response_headers.get("upgrade", "").lower() == "websocket"
    a.hello("alice")
    b = n.client()
    b.hello("bob")
    assert a.join("lobby")["members"] == 1
    assert b.join("lobby")["members"] == 2

    r = a.request("publish", skip=True, room="lobby", data={"text": "hi through nginx"})
    assert r["ok"] is True, r
    seq = r["data"]["seq"]
    own = [f for f in a.backlog if f.get("type") == "message"]
    assert [(m["seq"], m["from"], m["data"]) for m in own] == [(seq, "alice", {"text": "hi through nginx"})]
    a.backlog.clear()

    m = b.next_json()
    assert (m["room"], m["seq"], m["from"], m["data"]) == ("lobby", seq, "alice", {"text": "hi through nginx"})

    # A message near the default 64 KiB limit passes nginx unchanged (no buffering, no size cap).
    big = "x" * 60000
    r = b.request("publish", skip=True, room="lobby", data=big, echo=False)
    assert r["ok"] is True, r
    m = a.next_json()
    assert m["type"] == "message", m
    assert m["data"] == big and m["from"] == "bob"


def test_history_and_ping_through_nginx(parley, nginx):
    s = parley()
    n = nginx(upstream(s))
    a = n.client()
    a.join("r")
    for i in range(5):
        a.ok("publish", skip=True, room="r", data=i)
    d = a.ok("history", skip=True, room="r", limit=3)
    assert [m["data"] for m in d["messages"]] == [2, 3, 4]
    assert isinstance(a.ok("ping", skip=True)["ts"], int)


def test_healthz_passes_through_nginx(parley, nginx):
    s = parley()
    n = nginx(upstream(s))
    status, _, body = n.http_get("/healthz")
    assert status == 200 and body.strip() == b"ok", (status, body)
    # also from another client address (only /metrics is restricted)
    status, _, body = n.http_get("/healthz", source=CLIENT_ADDR)
    assert status == 200 and body.strip() == b"ok", (status, body)


def test_static_client_is_proxied_at_root(parley, nginx):
    s = parley("--web-root", WEB_CLIENT)
    n = nginx(upstream(s))
    status, hdrs, body = n.http_get("/")
    assert status == 200, (status, body[:200])
    assert hdrs.get("content-type", "").startswith("text/html")
    with open(os.path.join(WEB_CLIENT, "index.html"), "rb") as f:
        assert body == f.read()
    status, hdrs, _ = n.http_get("/parley.js")
    assert status == 200 and "javascript" in hdrs.get("content-type", ""), (status, hdrs)


def test_static_client_served_by_nginx_variant(parley, nginx, tmp_data_root):
    # variant (b) of the site: nginx serves the web root itself; /ws still goes to parleyd.
    s = parley("--web-root", os.path.join(tmp_data_root, "no-such-dir"))
    n = nginx(upstream(s), web_root=WEB_CLIENT)
    status, hdrs, body = n.http_get("/")
    assert status == 200, (status, body[:200])
    with open(os.path.join(WEB_CLIENT, "index.html"), "rb") as f:
        assert body == f.read()
    status, hdrs, _ = n.http_get("/parley.js")
    assert status == 200 and "javascript" in hdrs.get("content-type", ""), (status, hdrs)
    assert n.http_get("/no-such-file.js")[0] == 404
    c = n.client()
    assert c.ok("ping")
    status, _, body = n.http_get("/healthz")
    assert status == 200 and body.strip() == b"ok"


def test_metrics_through_nginx_only_from_localhost(parley, nginx):
    s = parley()
    n = nginx(upstream(s), admin="%s:%d" % (HOST, s.admin_port))
    status, _, body = n.http_get("/metrics")
    assert status == 200, (status, body[:300])
    assert b"parley_connections" in body
    status, _, body = n.http_get("/metrics", source=CLIENT_ADDR)
    assert status == 403, "nginx must refuse /metrics to other hosts, got %r %r" % (status, body[:200])


def test_metrics_through_nginx_come_from_the_admin_listener(parley, nginx):
    # The shipped site sends /metrics to parleyd's admin listener: pointing that upstream at the
    # public listener (which no longer serves /metrics) must not work.
    s = parley()
    n = nginx(upstream(s), admin=upstream(s))
    status, _, body = n.http_get("/metrics")
    assert status == 404, (status, body[:200])


def test_ws_upgrade_only_on_ws_path_through_nginx(parley, nginx):
    s = parley()
    n = nginx(upstream(s))
    with pytest.raises(HandshakeError) as e:
        ProxyClient(HOST, n.port, path="/other")
    assert e.value.status != 101


# ---------------------------------------------------------------------------------------- trusted proxies via nginx


def test_trusted_nginx_passes_the_real_client_address(parley, nginx):
    s = parley("--log-level", "debug", "--trusted-proxies", "127.0.0.1")
    n = nginx(upstream(s))
    seen = len(peers_logged(s))
    n.client(source=CLIENT_ADDR)
    assert wait_next_peer(s, seen) == CLIENT_ADDR


def test_trusted_nginx_ignores_a_spoofed_forwarded_for(parley, nginx):
    # The client forges X-Forwarded-For; nginx appends the real address, so parleyd receives
    # "203.0.113.9, 127.0.0.2" and the rightmost untrusted entry is the real client.
    s = parley("--log-level", "debug", "--trusted-proxies", "127.0.0.1/32,::1")
    n = nginx(upstream(s))
    seen = len(peers_logged(s))
    c = n.client(source=CLIENT_ADDR, headers=[SPOOF])
    assert wait_next_peer(s, seen) == CLIENT_ADDR
    assert c.ok("ping")  # the connection works normally


def test_untrusted_nginx_is_the_peer(parley, nginx):
    # No --trusted-proxies: the headers nginx sets are not believed; the peer is nginx itself.
    s = parley("--log-level", "debug")
    n = nginx(upstream(s))
    seen = len(peers_logged(s))
    n.client(source=CLIENT_ADDR, headers=[SPOOF])
    assert wait_next_peer(s, seen) == "127.0.0.1"


def test_nginx_outside_trusted_list_is_the_peer(parley, nginx):
    s = parley("--log-level", "debug", "--trusted-proxies", "10.0.0.0/8,192.168.1.1")
    n = nginx(upstream(s))
    seen = len(peers_logged(s))
    n.client(source=CLIENT_ADDR, headers=[SPOOF])
    assert wait_next_peer(s, seen) == "127.0.0.1"


# ---------------------------------------------------------------------------------------- header rules, no nginx

# (trusted_proxies, request headers, address parleyd must believe). The test client is 127.0.0.1.
DIRECT_CASES = [
    (None, ["X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.9"], "127.0.0.1"),
    ("10.0.0.0/8", ["X-Forwarded-For: 203.0.113.9"], "127.0.0.1"),
    ("127.0.0.1", [], "127.0.0.1"),
    ("127.0.0.1", ["X-Forwarded-For: 203.0.113.9"], "203.0.113.9"),
    ("127.0.0.1", ["X-Forwarded-For: 203.0.113.9, 198.51.100.7"], "198.51.100.7"),
    ("127.0.0.0/8,198.51.100.0/24", ["X-Forwarded-For: 203.0.113.9, 198.51.100.7"], "203.0.113.9"),
    ("127.0.0.1", ["X-Forwarded-For: 203.0.113.9,198.51.100.7,  192.0.2.5"], "192.0.2.5"),
    ("127.0.0.1", ["X-Forwarded-For: 2001:db8::7"], "2001:db8::7"),
    ("127.0.0.1", ["X-Real-IP: 192.0.2.44"], "192.0.2.44"),
]


@pytest.mark.parametrize("trusted,headers,want", DIRECT_CASES,
                         ids=["untrusted", "other-net", "no-header", "xff", "xff-rightmost",
                              "xff-cidr-skips-proxy", "xff-spaces", "xff-ipv6", "x-real-ip"])
def test_forwarded_headers_rules(parley, trusted, headers, want):
    flags = ["--log-level", "debug"] + (["--trusted-proxies", trusted] if trusted else [])
    s = parley(*flags)
    seen = len(peers_logged(s))
    c = ProxyClient(HOST, s.port, headers=headers)
    s.clients.append(c)
    assert wait_next_peer(s, seen) == want
    assert c.ok("ping")


def test_garbage_forwarded_for_is_not_believed(parley):
    s = parley("--log-level", "debug", "--trusted-proxies", "127.0.0.1")
    seen = len(peers_logged(s))
    c = ProxyClient(HOST, s.port, headers=["X-Forwarded-For: not-an-ip, <script>"])
    s.clients.append(c)
    peer = wait_next_peer(s, seen)
    ipaddress.ip_address(peer)  # whatever it logs is an address, never the header text
    assert c.ok("ping")


def test_healthz_with_forwarded_headers(parley):
    s = parley("--trusted-proxies", "127.0.0.1")
    status, _, body = http_request(HOST, s.port, "/healthz", headers=[SPOOF, "X-Real-IP: 203.0.113.9"])
    assert status == 200 and body.strip() == b"ok"
