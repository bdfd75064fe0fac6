"""HTTP API user endpoints: subscribe and unsubscribe every connection of a user, disconnect."""

import apihelp
from apihelp import Api


def test_subscribe_every_connection_of_the_user(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    a1, a2, other = srv.client("ann"), srv.client("ann"), srv.client("bob")
    a.ok("POST", "/api/publish", {"room": "team", "data": "before"})
    r = a.ok("POST", "/api/subscribe", {"user": "ann", "room": "team"})
    assert r == {"connections": 2, "joined": 2, "already": 0, "skipped": 0}
    for c in (a1, a2):
        assert c.next_json() == {"type": "subscribed", "room": "team", "seq": 1}
    # They get the room's messages without asking; bob does not.
    a.ok("POST", "/api/publish", {"room": "team", "data": "hello"})
    for c in (a1, a2):
        m = c.next_json()
        assert m["type"] == "message" and m["data"] == "hello" and m["seq"] == 2
    other.assert_nothing_pending(0.2)
    # They are members like any other: publish, presence, history work.
    assert a1.ok("publish", room="team", data="hi", skip=True)["seq"] == 3
    members = a.ok("GET", "/api/presence?room=team")["members"]
    assert members == [{"user": "ann", "conns": 2}]
    # Again: already members.
    r = a.ok("POST", "/api/subscribe", {"user": "ann", "room": "team"})
    assert r["joined"] == 0 and r["already"] == 2


def test_subscribe_with_presence_and_max_rooms(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--max-rooms", "1")
    a = Api(srv)
    c = srv.client("cat")
    r = a.ok("POST", "/api/subscribe", {"user": "cat", "room": "one", "presence": True})
    assert r["joined"] == 1
    assert c.next_json()["type"] == "subscribed"
    # presence: true, as with a join: the room's presence events come
    assert c.next_json() == {"type": "presence", "room": "one", "joined": ["cat"], "left": []}
    r = a.ok("POST", "/api/subscribe", {"user": "cat", "room": "two"})
    assert r == {"connections": 1, "joined": 0, "already": 0, "skipped": 1}
    c.assert_nothing_pending(0.2)


def test_subscribe_errors(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    a.err("POST", "/api/subscribe", {"user": "nobody", "room": "r"}, status=404, code="not_found")
    a.err("POST", "/api/unsubscribe", {"user": "nobody", "room": "r"}, status=404, code="not_found")
    a.err("POST", "/api/subscribe", {"room": "r"}, code="bad_request")
    a.err("POST", "/api/subscribe", {"user": "x"}, code="bad_request")
    a.err("POST", "/api/subscribe", {"user": "x", "room": "bad room"}, code="bad_room")
    a.err("POST", "/api/subscribe", {"user": 7, "room": "r"}, status=400)


def test_unsubscribe(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c1, c2 = srv.client("dan"), srv.client("dan")
    c1.join("room")
    r = a.ok("POST", "/api/unsubscribe", {"user": "dan", "room": "room"})
    assert r == {"connections": 2, "left": 1}
    assert c1.next_json() == {"type": "unsubscribed", "room": "room"}
    a.ok("POST", "/api/publish", {"room": "room", "data": 1})
    c1.assert_nothing_pending(0.2)
    c2.assert_nothing_pending(0.01)
    assert c1.err("publish", room="room", data=1) == "not_member"


def test_renamed_user_is_found_by_the_new_name(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    c = srv.client("first")
    c.hello("second")
    a.err("POST", "/api/subscribe", {"user": "first", "room": "r"}, status=404)
    assert a.ok("POST", "/api/subscribe", {"user": "second", "room": "r"})["joined"] == 1


def test_disconnect(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    e1, e2, f = srv.client("eve"), srv.client("eve"), srv.client("fay")
    assert a.ok("POST", "/api/disconnect", {"user": "eve", "code": 4403, "reason": "go away"}) == {"closed": 2}
    # Who did it is in the log (the key's name, never the key).
    assert "msg=api_disconnect key=backend user=\"eve\" code=4403 closed=2" in srv.log()
    assert apihelp.KEY1 not in srv.log()
    for c in (e1, e2):
        cl, _ = c.recv_close()
        assert cl.code == 4403 and cl.reason == "go away"
    assert f.ok("ping")
    # Default code and reason; an unknown user is not an error.
    assert a.ok("POST", "/api/disconnect", {"user": "fay"}) == {"closed": 1}
    cl, _ = f.recv_close()
    assert cl.code == 4000 and cl.reason == "disconnected by the server"
    assert a.ok("POST", "/api/disconnect", {"user": "ghost"}) == {"closed": 0}
    apihelp.wait_for(lambda: a.ok("GET", "/api/info")["connections"] == 0, what="closed")
    st, _, body = apihelp.raw_exchange(srv.admin_port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert 'parley_disconnects_total{reason="by_server"} 3' in body.decode()
