"""HTTP API moderation: POST /api/delete, POST /api/erase, POST /api/ban, DELETE /api/ban, and the erase
progress in GET /api/info; errors mapped to HTTP statuses."""

import os
import time

import apihelp
from test_moderation import closed_with, file_bytes, next_of_type, publish


def test_api_delete_any_message(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    api = apihelp.Api(srv)
    alice, bob = srv.client("alice"), srv.client("bob")
    alice.join("r")
    bob.join("r")
    seq = publish(alice, "r", "delete me")
    assert api.ok("POST", "/api/delete", {"room": "r", "seq": seq}) == {"room": "r", "seq": seq}
    for c in (alice, bob):
        assert next_of_type(c, "deleted") == {"type": "deleted", "room": "r", "seq": seq}
    assert bob.ok("history", room="r", skip=True)["messages"][0] == {
        "type": "message", "room": "r", "seq": seq, "deleted": True}
    api.err("POST", "/api/delete", {"room": "r", "seq": 99}, status=404, code="not_found")
    api.err("POST", "/api/delete", {"room": "nope", "seq": 1}, status=404, code="not_found")
    api.err("POST", "/api/delete", {"room": "r"}, status=400, code="bad_request")
    api.err("POST", "/api/delete", {"room": "r", "seq": 0}, status=400, code="bad_request")
    api.err("POST", "/api/delete", {"room": "r", "seq": "1"}, status=400, code="bad_request")
    api.err("POST", "/api/delete", {"room": "r", "seq": 1}, key="wrong", status=401)


def test_api_ban_in_auth_none_and_lift(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    api = apihelp.Api(srv)
    a = srv.client("alice")
    d = api.ok("POST", "/api/ban", {"user": "alice", "seconds": 60, "reason": "flooding"})
    assert d["user"] == "alice" and d["until"] > time.time() * 1000
    assert closed_with(a, 4003).reason == "flooding"
    c = srv.client()
    assert c.err("hello", name="alice") == "forbidden"
    assert closed_with(c, 4003).reason == "flooding"
    srv.client("bob").sync()
    api.err("POST", "/api/ban", {"user": "alice"}, status=400, code="bad_request")
    api.err("POST", "/api/ban", {"user": "alice", "seconds": 0}, status=400, code="bad_request")
    api.err("POST", "/api/ban", {"user": "", "seconds": 5}, status=400)
    assert api.ok("DELETE", "/api/ban", {"user": "alice"}) == {"user": "alice", "lifted": True}
    srv.client("alice").sync()


def test_api_erase_and_info_progress(parley, tmp_path):
    tag = "%d-%d" % (os.getpid(), int(time.time()))
    srv = apihelp.start(parley, tmp_path)
    api = apihelp.Api(srv)
    alice = srv.client("alice")
    alice.join("r")
    for i in range(20):
        publish(alice, "r", "API-ERASE-%s-%d" % (tag, i))
    assert api.ok("POST", "/api/erase", {"user": "alice"}) == {"user": "alice", "started": True}
    deadline = time.monotonic() + 30
    while True:
        info = api.ok("GET", "/api/info")
        m = info["moderation"]
        if m["erase"]["done"] >= 1 and m["erase"]["running"] == 0:
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.05)
    assert m["erase"]["erased"] == 20
    assert ("API-ERASE-%s" % tag).encode() not in file_bytes(srv.data_dir)
    api.err("POST", "/api/erase", {}, status=400, code="bad_request")
