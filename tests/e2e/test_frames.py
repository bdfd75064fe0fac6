"""WebSocket framing: size limit, fragmentation, binary, invalid UTF-8, control frames."""

import json
import os
import struct

import pytest

from wsclient import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Close, _mask, encode_frame

SMALL = ("--max-message-size", "1024")


def padded_ping(total, cid=1):
    """A ping command of exactly `total` bytes (padding in an ignored field)."""
    base = json.dumps({"type": "ping", "id": cid, "pad": ""}, separators=(",", ":"))
    text = json.dumps({"type": "ping", "id": cid, "pad": "x" * (total - len(base))}, separators=(",", ":"))
    assert len(text) == total
    return text


def assert_closed_with(c, code):
    close, skipped = c.recv_close(timeout=5)
    assert isinstance(close, Close)
    assert close.code == code, "want close %d, got %r (after %d messages)" % (code, close, skipped)


def test_message_of_exactly_max_size_is_accepted(parley):
    s = parley(*SMALL)
    c = s.client()
    c.send_text(padded_ping(1024))
    r = c.wait_reply(1)
    assert r["ok"] is True


def test_oversized_message_closes_1009(parley):
    s = parley(*SMALL)
    c = s.client()
    c.send_text(padded_ping(1025))
    assert_closed_with(c, 1009)


def test_oversized_message_default_limit_closes_1009(srv):
    c = srv.client()
    c.send_text(padded_ping(65537))
    assert_closed_with(c, 1009)


def test_invalid_json_gets_bad_json_and_connection_stays_usable(srv):
    c = srv.client("alice")
    c.send_text("{this is not json")
    f = c.next_json()
    assert f["type"] == "error" and f["error"]["code"] == "bad_json", f
    c.join("r")
    assert c.ok("publish", room="r", data=1, echo=False)["seq"] == 1


def test_binary_frame_closes_1003(srv):
    c = srv.client()
    c.send_binary(b'{"type":"ping","id":1}')
    assert_closed_with(c, 1003)


def test_invalid_utf8_text_frame_closes_1007(srv):
    c = srv.client()
    c.send_text(b'{"type":"ping","id":1,"x":"\xff\xfe"}')
    assert_closed_with(c, 1007)


def test_overlong_utf8_encoding_closes_1007(srv):
    c = srv.client()
    c.send_text(b'{"type":"ping","id":1,"x":"\xc0\xaf"}')
    assert_closed_with(c, 1007)


def test_utf16_surrogate_encoded_in_utf8_closes_1007(srv):
    c = srv.client()
    c.send_text(b'{"type":"ping","id":1,"x":"\xed\xa0\x80"}')
    assert_closed_with(c, 1007)


def test_message_fragmented_into_3_frames_is_reassembled(srv):
    c = srv.client("alice")
    c.join("r")
    c.send_fragmented(json.dumps({"type": "publish", "id": 9, "room": "r", "data": "frag" * 100}), parts=3)
    m = c.next_json()
    assert m["type"] == "message" and m["data"] == "frag" * 100, m
    assert c.wait_reply(9)["ok"] is True


def test_fragment_split_inside_multibyte_character_is_fine(srv):
    c = srv.client()
    text = json.dumps({"type": "hello", "id": 4, "name": "日本語"}, ensure_ascii=False).encode()
    cut = text.index("本".encode()) + 1  # split in the middle of a 3-byte character
    c.send_raw(encode_frame(OP_TEXT, text[:cut], fin=False) + encode_frame(OP_CONT, text[cut:], fin=True))
    r = c.wait_reply(4)
    assert r["ok"] is True and r["data"]["user"] == "日本語"


def test_ping_between_fragments_is_answered_and_message_completes(srv):
    c = srv.client()
    text = json.dumps({"type": "ping", "id": 2}).encode()
    c.send_raw(encode_frame(OP_TEXT, text[:5], fin=False) + encode_frame(OP_PING, b"hi")
               + encode_frame(OP_CONT, text[5:], fin=True))
    # The pong and the reply may come in either order; both must come.
    frames = [c.recv_frame(), c.recv_frame()]
    pongs = [f for f in frames if f[1] == OP_PONG]
    texts = [json.loads(f[2]) for f in frames if f[1] == OP_TEXT]
    assert [p[2] for p in pongs] == [b"hi"], frames
    assert len(texts) == 1 and texts[0]["id"] == 2 and texts[0]["ok"] is True, frames


def test_fragmented_message_bigger_than_limit_closes_1009(parley):
    s = parley(*SMALL)
    c = s.client()
    c.send_fragmented(padded_ping(1500), parts=3)  # each fragment 500 bytes, total over 1024
    assert_closed_with(c, 1009)


def test_websocket_ping_gets_pong_with_same_payload(srv):
    c = srv.client()
    c.send_ping(b"abc")
    fin, op, payload = c.recv_frame()
    assert op == OP_PONG and payload == b"abc"


def test_client_close_is_answered_with_close(srv):
    c = srv.client()
    c.send_close(1000, "bye")
    close, _ = c.recv_close(timeout=5)
    assert close.code == 1000, close


@pytest.mark.xfail(strict=True, reason="RFC 6455 5.1: a server MUST close on an unmasked client frame; "
                   "libwebsockets 4.1 processes it and no public API shows the mask bit (fixed in lws 5.0, "
                   "commit cae06c63a): docs/security.md, Known limitations")
def test_unmasked_client_frame_closes_connection(srv):
    c = srv.client()
    c.send_frame(OP_TEXT, b'{"type":"ping","id":1}', mask=False)
    close, skipped = c.recv_close(timeout=5)
    assert skipped == 0, "an unmasked frame must not be processed"
    assert close.code in (1002, None), close


def test_binary_continuation_of_fragmented_binary_closes_1003(srv):
    c = srv.client()
    c.send_fragmented(b"\x00\x01\x02\x03\x04\x05", parts=3, opcode=OP_BINARY)
    assert_closed_with(c, 1003)


def test_huge_declared_frame_is_closed_1009_without_waiting_for_all_of_it(srv):
    # Header announces 10 MB; we send only 70 KB (past the 64 KB limit) and then wait.
    c = srv.client()
    n = 10 * 2 ** 20
    key = os.urandom(4)
    c.send_raw(struct.pack("!BBQ", 0x81, 0x80 | 127, n) + key + _mask(key, b"x" * 70000))
    assert_closed_with(c, 1009)


def test_oversized_frame_with_invalid_utf8_gets_close_1007_or_1009(srv):
    # Both rules apply (bad UTF-8 and too big); either code is right, a bare TCP drop is not.
    c = srv.client()
    c.send_text(b"\xff" + b"x" * 69999)
    close, _ = c.recv_close(timeout=5)
    assert close.code in (1007, 1009), close


def test_invalid_utf8_split_across_fragments_closes_1007(srv):
    c = srv.client()
    c.send_raw(encode_frame(OP_TEXT, b'{"type":"ping","id":1,"x":"\xe6', fin=False)
               + encode_frame(OP_CONT, b'\x97"}', fin=True))  # \xe6\x97 then '"': truncated sequence
    assert_closed_with(c, 1007)
