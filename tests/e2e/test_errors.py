"""One test per client-triggerable error code of protocol v1."""

import json

import pytest

SMALL = ("--max-message-size", "1024")


def error_frame(c):
    f = c.next_json()
    assert f["type"] == "error", f
    assert isinstance(f["error"]["message"], str)
    return f["error"]["code"]


@pytest.mark.parametrize("text", [
    pytest.param("not json", id="garbage"),
    pytest.param("{\"type\":\"ping\",", id="truncated"),
    pytest.param("", id="empty"),
    pytest.param("[1,2]", id="array"),
    pytest.param("42", id="number"),
    pytest.param("\"ping\"", id="string"),
    pytest.param("null", id="null"),
])
def test_bad_json_error_frame(srv, text):
    c = srv.client()
    c.send_text(text)
    assert error_frame(c) == "bad_json"
    assert c.request("ping")["ok"] is True


def test_bad_request_missing_type(srv):
    c = srv.client()
    c.send_json({"id": 1})
    f = c.next_json()
    code = f["error"]["code"]
    assert code == "bad_request", f


def test_bad_request_non_string_type(srv):
    c = srv.client()
    c.send_json({"type": 5, "id": 1})
    f = c.next_json()
    assert f["error"]["code"] == "bad_request", f


def test_bad_request_missing_field(srv):
    c = srv.client()
    assert c.err("join") == "bad_request"


def test_bad_request_bad_id(srv):
    c = srv.client()
    c.send_json({"type": "ping", "id": 0})
    assert error_frame(c) == "bad_request"


def test_unknown_type_reply(srv):
    c = srv.client()
    assert c.err("subscribe", room="r") == "unknown_type"


def test_unknown_type_without_id_error_frame(srv):
    c = srv.client()
    c.send_json({"type": "frobnicate"})
    assert error_frame(c) == "unknown_type"


def test_unknown_type_server_frame_types_are_not_commands(srv):
    c = srv.client()
    assert c.err("welcome") == "unknown_type"
    assert c.err("reply") == "unknown_type"


def test_bad_room(srv):
    c = srv.client()
    assert c.err("join", room="no spaces") == "bad_room"


def test_bad_name(srv):
    c = srv.client()
    assert c.err("hello", name="") == "bad_name"


def test_not_member(srv):
    c = srv.client()
    assert c.err("publish", room="r", data=1) == "not_member"


def test_too_many_rooms(parley):
    s = parley("--max-rooms", "3")
    c = s.client()
    for r in ("a", "b", "c"):
        c.join(r)
    assert c.err("join", room="d") == "too_many_rooms"


def _publish_text(cid, room, data):
    return json.dumps({"type": "publish", "id": cid, "room": room, "data": data, "echo": False},
                      separators=(",", ":"))


def test_too_large_when_wrapped_message_exceeds_max_message_size(parley):
    s = parley(*SMALL)
    a = s.client("alice")
    b = s.client("bob")
    a.join("r")
    b.join("r")
    # Largest data whose inbound publish fits in 1024 bytes: the outbound message frame adds
    # seq, ts and from, so it no longer fits.
    pad = 1024 - len(_publish_text(1, "r", ""))
    text = _publish_text(1, "r", "x" * pad)
    assert len(text.encode()) == 1024
    a.send_text(text)
    r = a.wait_reply(1)
    assert r["ok"] is False and r["error"]["code"] == "too_large", r
    # nobody got it, and the connection is still fine
    b.sync()
    assert b.backlog == []
    assert a.request("ping")["ok"] is True


def test_publish_that_fits_after_wrapping_is_ok(parley):
    s = parley(*SMALL)
    a = s.client("alice")
    b = s.client("bob")
    a.join("r")
    b.join("r")
    a.ok("publish", room="r", data="x" * 800, echo=False)
    m = b.next_json()
    assert m["data"] == "x" * 800


def test_too_large_without_id_gets_error_frame(parley):
    s = parley(*SMALL)
    a = s.client("alice")
    a.join("r")
    obj = {"type": "publish", "room": "r", "data": ""}
    obj["data"] = "x" * (1024 - len(json.dumps(obj, separators=(",", ":"))))
    a.send_json(obj)
    assert error_frame(a) == "too_large"


def test_too_large_boundary_exactly_max_is_ok_one_more_is_too_large(parley):
    s = parley(*SMALL)
    a = s.client("alice")
    b = s.client("bob")
    a.join("r")
    b.join("r")
    # Learn the server's wrapping overhead from a real message frame (payload bytes on the wire).
    a.ok("publish", room="r", data="", echo=False)
    m = b.recv_message()
    overhead = len(m.payload)  # data "" contributes 0 chars between the quotes
    # seq goes from 1 to 2 and 3: same number of digits, ts has 13 digits for centuries.
    fit = 1024 - overhead
    a.ok("publish", room="r", data="y" * fit, echo=False)
    m = b.recv_message()
    assert len(m.payload) == 1024, "the probe assumption failed: %d" % len(m.payload)
    assert a.err("publish", room="r", data="y" * (fit + 1), echo=False) == "too_large"
