"""HTTP API reads: history (cache and disk), presence, rooms (paged), info."""

import socket
import time

import apihelp
from apihelp import KEY1, Api


def test_history_cache_and_disk(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--history-cache", "4")
    a = Api(srv)
    c = srv.client("alice")
    c.join("h")
    for i in range(1, 11):
        assert a.ok("POST", "/api/publish", {"room": "h", "data": i})["seq"] == i
    # The latest page: the same as the protocol's.
    mine = c.ok("history", room="h", limit=3, skip=True)
    page = a.ok("GET", "/api/history?room=h&limit=3")
    assert page == mine and [m["seq"] for m in page["messages"]] == [8, 9, 10] and page["more"]
    # Older than the cache (4 messages): read from disk, answered later.
    page = a.ok("GET", "/api/history?room=h&before=4&limit=5")
    assert [m["data"] for m in page["messages"]] == [1, 2, 3] and page["more"] is False
    assert page == c.ok("history", room="h", before=4, limit=5, skip=True)
    # Default limit (50) and a room without history.
    assert len(a.ok("GET", "/api/history?room=h")["messages"]) == 10
    assert a.ok("GET", "/api/history?room=nothing-here") == {"messages": [], "more": False}


def test_history_after_restart_from_disk(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    for i in range(5):
        a.ok("POST", "/api/publish", {"room": "d", "data": i})
    data_dir = srv.data_dir
    assert srv.stop() == 0
    srv2 = parley("--api-keys-file", srv.keys_path, data_dir=data_dir)
    srv2.api_port = apihelp.api_port(srv2)
    page = Api(srv2).ok("GET", "/api/history?room=d&limit=2")
    assert [m["data"] for m in page["messages"]] == [3, 4] and page["more"] is True


def test_history_client_gone_before_the_disk_answers(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--history-cache", "0")
    a = Api(srv)
    for i in range(50):
        a.ok("POST", "/api/publish", {"room": "g", "data": "x" * 1000})
    # Many disk reads, each client hanging up right after asking.
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", srv.api_port))
        s.sendall(b"GET /api/history?room=g&limit=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  KEY1.encode() + b"\r\n\r\n")
        s.close()
    time.sleep(0.3)
    assert len(a.ok("GET", "/api/history?room=g&limit=100")["messages"]) == 50


def test_presence(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    assert a.ok("GET", "/api/presence?room=p") == {"members": []}
    c1, c2, c3 = srv.client("ann"), srv.client("ann"), srv.client("bob")
    for c in (c1, c2, c3):
        c.join("p")
    members = sorted(a.ok("GET", "/api/presence?room=p")["members"], key=lambda m: m["user"])
    assert members == [{"user": "ann", "conns": 2}, {"user": "bob", "conns": 1}]
    a.err("GET", "/api/presence", code="bad_request")


def test_rooms_paged(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c = srv.client("u")
    names = ["team-%02d" % i for i in range(25)] + ["other"]
    for n in names:
        c.join(n)
    a.ok("POST", "/api/publish", {"room": "team-03", "data": 1})
    c2 = srv.client("v")
    c2.join("team-03")
    seen, cursor = [], None
    while True:
        q = "/api/rooms?prefix=team-&limit=10" + ("&cursor=" + cursor if cursor else "")
        page = a.ok("GET", q)
        seen += page["rooms"]
        cursor = page["cursor"]
        if cursor is None:
            break
        # A room created between pages before the cursor does not shift the next page.
        c.join("team-00a", skip=True)
    assert [r["room"] for r in seen if r["room"] != "team-00a"] == sorted(names[:-1])
    t3 = [r for r in seen if r["room"] == "team-03"][0]
    assert t3 == {"room": "team-03", "members": 2, "connections": 2, "seq": 1}
    everything = a.ok("GET", "/api/rooms?limit=1000")
    assert everything["cursor"] is None and len(everything["rooms"]) == 27
    a.err("GET", "/api/rooms?limit=1001", code="bad_request")
    a.err("GET", "/api/rooms?prefix=a%20b", code="bad_room")


def test_info(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c = srv.client("alice")
    c.join("i")
    info = a.ok("GET", "/api/info")
    assert info["version"] and info["uptime_s"] >= 0
    assert info["connections"] == 1 and info["rooms"] == 1 and info["users"] == 1
    assert info["storage"]["state"] == "ok"
    assert len(info["nodes"]) == 1 and info["nodes"][0]["self"] is True
