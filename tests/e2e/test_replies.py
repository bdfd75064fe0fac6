"""Request/reply correlation by id, commands without id, invalid ids, ping."""

import pytest

from conftest import now_ms


def test_reply_echoes_id_and_has_ok_and_data(srv):
    c = srv.client()
    r = c.request("ping", id=77)
    assert r["type"] == "reply" and r["id"] == 77 and r["ok"] is True and "data" in r
    assert set(r) == {"type", "id", "ok", "data"}


def test_error_reply_shape(srv):
    c = srv.client()
    r = c.request("leave", id=5, room="nowhere")
    assert set(r) == {"type", "id", "ok", "error"}
    assert r["ok"] is False and r["error"]["code"] == "not_member"
    assert isinstance(r["error"]["message"], str) and r["error"]["message"]


def test_several_requests_in_flight_are_matched_by_id(srv):
    c = srv.client("alice")
    c.send_json({"type": "ping", "id": 1001})
    c.send_json({"type": "join", "id": 1002, "room": "r"})
    c.send_json({"type": "publish", "id": 1003, "room": "r", "data": 1, "echo": False})
    c.send_json({"type": "leave", "id": 1004, "room": "other"})
    c.send_json({"type": "ping", "id": 1005})
    got = {}
    for _ in range(5):
        f = c.next_json()
        assert f["type"] == "reply", f
        assert f["id"] not in got, "duplicate reply %r" % (f,)
        got[f["id"]] = f
    assert set(got) == {1001, 1002, 1003, 1004, 1005}
    assert "ts" in got[1001]["data"] and "ts" in got[1005]["data"]
    assert got[1002]["data"]["room"] == "r"
    assert got[1003]["data"]["seq"] == 1
    assert got[1004]["ok"] is False and got[1004]["error"]["code"] == "not_member"
    c.assert_nothing_pending(0.2)


def test_same_id_reused_gets_a_reply_each_time(srv):
    c = srv.client()
    assert c.request("ping", id=3)["ok"] is True
    assert c.request("ping", id=3)["ok"] is True


def test_largest_valid_id_2_pow_53_minus_1_is_echoed(srv):
    c = srv.client()
    r = c.request("ping", id=2 ** 53 - 1)
    assert r["id"] == 2 ** 53 - 1 and r["ok"] is True


def test_command_without_id_gets_no_reply_on_success(srv):
    c = srv.client("alice")
    c.send_json({"type": "join", "room": "r"})
    c.send_json({"type": "ping"})
    # The join took effect (publish would be not_member otherwise) and nothing else was sent.
    r = c.request("publish", room="r", data=1, echo=False)
    assert r["ok"] is True, r
    c.assert_nothing_pending(0.3)


def test_publish_without_id_still_fans_out(srv):
    a, b = srv.client("alice"), srv.client("bob")
    a.join("r")
    b.join("r")
    a.send_json({"type": "publish", "room": "r", "data": "x"})
    assert b.next_json()["data"] == "x"
    m = a.next_json()
    assert m["type"] == "message" and m["data"] == "x"
    a.assert_nothing_pending(0.3)


def test_failed_command_without_id_gets_error_frame(srv):
    c = srv.client()
    c.send_json({"type": "leave", "room": "r"})
    f = c.next_json()
    assert f["type"] == "error" and f["error"]["code"] == "not_member", f
    assert "id" not in f


@pytest.mark.parametrize("bad_id", [
    pytest.param(0, id="zero"),
    pytest.param(-1, id="minus_one"),
    pytest.param(1.5, id="float_1_5"),
    pytest.param("7", id="string_7"),
    pytest.param(2 ** 53, id="2_pow_53"),
    pytest.param(2 ** 63, id="2_pow_63"),
    pytest.param(True, id="true"),
    pytest.param([1], id="array"),
    pytest.param({"n": 1}, id="object"),
])
def test_invalid_id_gets_bad_request_error_frame(srv, bad_id):
    c = srv.client()
    c.send_json({"type": "ping", "id": bad_id})
    f = c.next_json()
    assert f["type"] == "error", "invalid id %r must give an error frame, got %r" % (bad_id, f)
    assert f["error"]["code"] == "bad_request"
    # and the connection stays usable
    assert c.request("ping", id=1)["ok"] is True


def test_invalid_id_on_valid_join_does_not_join(srv):
    c = srv.client("alice")
    c.send_json({"type": "join", "room": "r", "id": 0})
    assert c.next_json()["type"] == "error"
    assert c.err("publish", room="r", data=1) == "not_member"


def test_ping_reply_ts_is_near_now(srv):
    c = srv.client()
    before = now_ms()
    d = c.ok("ping")
    after = now_ms()
    assert set(d) == {"ts"} and isinstance(d["ts"], int)
    assert before - 1000 <= d["ts"] <= after + 1000
