"""hello: naming and renaming."""

import pytest


def test_hello_ok_returns_user(srv):
    c = srv.client()
    assert c.ok("hello", name="alice") == {"user": "alice"}


def test_hello_again_renames(srv):
    c = srv.client()
    c.hello("alice")
    assert c.ok("hello", name="bob") == {"user": "bob"}


def test_hello_rename_changes_from_of_published_messages(srv):
    c = srv.client("alice")
    c.join("r")
    c.hello("bob")
    cid = c.send_cmd("publish", room="r", data=1)
    m = c.next_json()
    assert m["type"] == "message" and m["from"] == "bob"
    assert c.wait_reply(cid)["ok"] is True


def test_hello_32_multibyte_characters_is_ok(srv):
    c = srv.client()
    name = "é" * 16 + "日" * 8 + "\U0001F600" * 8  # 32 code points, 96 bytes
    assert len(name) == 32
    assert c.ok("hello", name=name) == {"user": name}


def test_hello_32_ascii_characters_is_ok(srv):
    c = srv.client()
    assert c.ok("hello", name="a" * 32) == {"user": "a" * 32}


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"),
    pytest.param("a" * 33, id="33_ascii"),
    pytest.param("é" * 33, id="33_multibyte"),
    pytest.param("al\x00ice", id="nul"),
    pytest.param("al\x01ice", id="u0001"),
    pytest.param("alice\n", id="newline"),
    pytest.param("al\x1fice", id="u001f"),
    pytest.param("al\x7fice", id="del_u007f"),
    pytest.param("al\x85ice", id="c1_u0085"),
    pytest.param("al\x9fice", id="c1_u009f"),
])
def test_hello_bad_name_is_rejected_with_bad_name(srv, name):
    c = srv.client()
    assert c.err("hello", name=name) == "bad_name"


@pytest.mark.parametrize("name", [
    pytest.param(42, id="number"),
    pytest.param(None, id="null"),
    pytest.param(["alice"], id="array"),
    pytest.param({"n": "alice"}, id="object"),
    pytest.param(True, id="bool"),
])
def test_hello_non_string_name_is_bad_request(srv, name):
    c = srv.client()
    assert c.err("hello", name=name) == "bad_request"


def test_hello_missing_name_is_bad_request(srv):
    c = srv.client()
    assert c.err("hello") == "bad_request"


def test_hello_bad_name_keeps_previous_name(srv):
    c = srv.client("alice")
    assert c.err("hello", name="") == "bad_name"
    c.join("r")
    cid = c.send_cmd("publish", room="r", data=None)
    assert c.next_json()["from"] == "alice"
    assert c.wait_reply(cid)["ok"] is True


def test_hello_bad_name_without_id_gets_error_frame(srv):
    c = srv.client()
    c.send_json({"type": "hello", "name": ""})
    f = c.next_json()
    assert f["type"] == "error" and f["error"]["code"] == "bad_name", f
    assert "id" not in f
