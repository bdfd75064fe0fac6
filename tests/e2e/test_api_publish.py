"""HTTP API publish and broadcast: the same message, seq and store as the protocol's publish; errors."""

import apihelp
from apihelp import Api


def test_publish_reaches_members_and_history(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c = srv.client("alice")
    c.join("news")
    assert a.ok("POST", "/api/publish", {"room": "news", "data": {"t": "hi"}}) == {"seq": 1}
    m = c.next_json()
    assert m["type"] == "message" and m["room"] == "news" and m["seq"] == 1
    assert m["from"] == "backend" and m["data"] == {"t": "hi"}
    # from is the sender shown; data keeps its JSON as sent (compacted).
    assert a.ok("POST", "/api/publish", {"room": "news", "data": [1, 2.50, "x"], "from": "bot"})["seq"] == 2
    m = c.next_json()
    assert m["from"] == "bot" and m["data"] == [1, 2.50, "x"]
    # A client's publish and the API's share one seq sequence.
    assert c.ok("publish", room="news", data="mine", skip=True)["seq"] == 3
    assert c.next_json()["data"] == "mine"  # its own copy, before the reply
    assert a.ok("POST", "/api/publish", {"room": "news", "data": None})["seq"] == 4
    assert c.next_json()["data"] is None
    hist = c.ok("history", room="news")
    assert [x["seq"] for x in hist["messages"]] == [1, 2, 3, 4]
    assert [x["from"] for x in hist["messages"]] == ["backend", "bot", "alice", "backend"]


def test_publish_volatile_and_empty_room(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c = srv.client("alice")
    c.join("live")
    assert a.ok("POST", "/api/publish", {"room": "live", "data": 1, "persist": False}) == {}
    m = c.next_json()
    assert "seq" not in m and m["data"] == 1
    assert a.ok("GET", "/api/history?room=live")["messages"] == []
    # A room nobody is in: stored, and there for whoever joins and asks.
    assert a.ok("POST", "/api/publish", {"room": "later", "data": "x"})["seq"] == 1
    assert c.join("later", since=0, skip=True)["seq"] == 1
    assert c.next_json()["data"] == "x"


def test_publish_too_large(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--max-message-size", "1024")
    a = Api(srv)
    e = a.err("POST", "/api/publish", {"room": "r", "data": "x" * 1100}, status=413, code="too_large")
    assert e["message"]
    # Nothing published, no seq spent.
    assert a.ok("POST", "/api/publish", {"room": "r", "data": "small"})["seq"] == 1


def test_broadcast(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--max-message-size", "1024")
    a = Api(srv)
    c = srv.client("alice")
    c.join("b1")
    c.join("b2")
    a.ok("POST", "/api/publish", {"room": "b2", "data": 0})
    c.next_json()
    res = a.ok("POST", "/api/broadcast", {"rooms": ["b1", "b2", "b3"], "data": {"n": 1}})["results"]
    assert res == [{"room": "b1", "seq": 1}, {"room": "b2", "seq": 2}, {"room": "b3", "seq": 1}]
    got = sorted((c.next_json()["room"]) for _ in range(2))
    assert got == ["b1", "b2"]
    # One result per room even when some fail: a long room name makes that room's frame too big.
    long_room = "r" * 128
    data = "x" * (1024 - 150)
    res = a.ok("POST", "/api/broadcast", {"rooms": ["s", long_room], "data": data})["results"]
    assert res[0] == {"room": "s", "seq": 1}
    assert res[1]["room"] == long_room and res[1]["error"]["code"] == "too_large"
    res = a.ok("POST", "/api/broadcast", {"rooms": ["v1"], "data": 1, "persist": False})["results"]
    assert res == [{"room": "v1"}]


def test_broadcast_room_limit(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    rooms = ["room-%d" % i for i in range(1000)]
    res = a.ok("POST", "/api/broadcast", {"rooms": rooms, "data": 1, "persist": False})["results"]
    assert len(res) == 1000 and res[999] == {"room": "room-999"}
    e = a.err("POST", "/api/broadcast", {"rooms": rooms + ["one-more"], "data": 1}, code="bad_request")
    assert "1000" in e["message"]


def test_storage_overload_is_503(parley, tmp_path):
    # A tiny store queue and a slow commit: a burst of persisted publishes overflows it.
    srv = apihelp.start(parley, tmp_path, "--store-queue-messages", "16", "--flush-interval-ms", "5000")
    a = Api(srv)
    rooms = ["o%d" % i for i in range(1000)]
    res = a.ok("POST", "/api/broadcast", {"rooms": rooms, "data": "x"})["results"]
    codes = {r.get("error", {}).get("code") for r in res}
    assert "overloaded" in codes, codes
    st, obj, _ = a.post("/api/publish", {"room": "o-next", "data": 1})
    if st != 200:  # the writer may have caught up meanwhile
        assert st == 503 and obj["error"]["code"] == "overloaded"
    # Volatile messages still go through.
    assert a.ok("POST", "/api/publish", {"room": "o1", "data": 1, "persist": False}) == {}


def test_idempotency_key(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c = srv.client("alice")
    c.join("k")
    body = {"room": "k", "data": {"n": 1}, "key": "3f9c2a7e01b44d5e"}
    assert a.ok("POST", "/api/publish", body)["seq"] == 1
    assert c.next_json()["data"] == {"n": 1}
    # The retry: the first one's seq, not stored or delivered again.
    assert a.ok("POST", "/api/publish", body)["seq"] == 1
    c.assert_nothing_pending(0.3)
    assert [m["seq"] for m in a.ok("GET", "/api/history?room=k")["messages"]] == [1]
    # The same key as a client's publish: keys are per room, not per edge.
    assert c.ok("publish", room="k", data={"n": 1}, key="3f9c2a7e01b44d5e")["seq"] == 1
    # Per room: the same key in a broadcast is new in other rooms, a retry in "k".
    res = a.ok("POST", "/api/broadcast", {"rooms": ["k", "k2"], "data": 2, "key": "3f9c2a7e01b44d5e"})
    assert res["results"] == [{"room": "k", "seq": 1}, {"room": "k2", "seq": 1}]
    # Bad keys, and keys on volatile messages.
    a.err("POST", "/api/publish", {"room": "r", "data": 1, "key": ""}, code="bad_request")
    a.err("POST", "/api/publish", {"room": "r", "data": 1, "key": "k" * 65}, code="bad_request")
    a.err("POST", "/api/publish", {"room": "r", "data": 1, "key": 5}, code="bad_request")
    e = a.err("POST", "/api/publish", {"room": "r", "data": 1, "key": "x", "persist": False},
              code="bad_request")
    assert "persisted" in e["message"]


def test_bench_api_scenario(parley, tmp_path):
    # parley-bench api (docs/benchmarks.md) against the real server: closed loop, then paced with
    # WebSocket members, every message delivered to every member.
    import json
    import os
    import subprocess
    import pytest
    bench = os.environ.get("PARLEY_BENCH")
    if not bench or not os.path.exists(bench):
        pytest.skip("PARLEY_BENCH not set")
    srv = apihelp.start(parley, tmp_path)

    def run(*args):
        argv = [bench, "api", "--api", "127.0.0.1:%d" % srv.api_port, "--key", apihelp.KEY1,
                "--url", "ws://127.0.0.1:%d/ws" % srv.port, "--server-pid", str(srv.proc.pid),
                "--json", "--quiet", "--duration", "1"] + list(args)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr + out.stdout
        return json.loads(out.stdout)

    r = run("--conns", "4")
    assert r["publishes"] > 100 and r["errors"] == 0
    r = run("--conns", "2", "--rate", "200", "--members", "20", "--persist")
    assert r["publishes"] >= 100 and r["errors"] == 0
    # Every answered publish reached every member (and requests still in flight at the end may have).
    assert r["expected_min"] == r["publishes"] * 20 <= r["delivered"] <= r["expected_max"]
    assert a_history_seq(srv) >= r["publishes"]


def a_history_seq(srv):
    page = Api(srv).ok("GET", "/api/history?room=api-bench&limit=1")
    return page["messages"][-1]["seq"]
