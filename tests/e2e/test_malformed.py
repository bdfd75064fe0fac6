"""Malformed and hostile input, end to end: every case asserts the documented error reply or close code
(docs/protocol.md §3, §4, §12-§14), and that afterwards the server still serves everyone else and has lost
nothing it acknowledged.

Each test builds a `Guard` before the attack: two well-behaved clients (a publisher and a listener) in a
room, with one durable message acknowledged. `guard.check()` afterwards proves the server is alive, that a
publish still reaches the listener, that every acknowledged message is still in `history`, and that a new
connection is accepted. During long waits (ping timeouts) `guard.tick()` keeps the bystanders talking, so
they are not hung up themselves and the room is shown to keep flowing while an attacker stalls.

Cases that "close with 1002 or hang up" accept a close frame with code 1002, a close frame without a code,
or a TCP drop (wsclient reports the last two as code None): RFC 6455 says "fail the connection", and
Parley's docs do not promise a code for framing violations.
"""

import json
import random
import socket
import struct
import threading
import time

import pytest

from conftest import HOST
from wsclient import OP_CONT, OP_PING, OP_TEXT, Close, WSClient, _mask, encode_frame

FAST_PING = ("--ping-interval", "1", "--ping-timeout", "3")
# conftest turns the rate limits off; these put the documented defaults back (a later flag wins).
DEFAULT_RATES = ("--rate-messages", "1000", "--rate-burst", "2000", "--rate-joins", "20",
                 "--rate-history", "20", "--rate-names", "10")
PROTOCOL_ERROR = (1002, None)  # close 1002, or a hang-up (close without code / TCP drop)


# ------------------------------------------------------------------------------------------- helpers


class Guard:
    """Two bystanders in `room`, connected before the attack, with acknowledged messages to protect."""

    def __init__(self, srv, room="safe"):
        self.srv = srv
        self.room = room
        self.pub = srv.client("bystander")
        self.lis = srv.client("listener")
        self.pub.join(room)
        self.lis.join(room)
        self.acked = []     # (seq, data) of every acknowledged publish, in order
        self.received = []  # (seq, data) the listener got, in order
        self.n = 0
        self.first_seq = self.publish("before attack", durable=True)
        self._last_tick = 0.0

    def publish(self, tag, durable=False):
        self.n += 1
        data = {"n": self.n, "tag": tag}
        r = self.pub.request("publish", skip=True, room=self.room, data=data, echo=False, durable=durable)
        assert r.get("ok") is True, "bystander publish failed: %r" % (r,)
        self.acked.append((r["data"]["seq"], data))
        return r["data"]["seq"]

    def _collect(self):
        self.lis.sync()
        keep = []
        for f in self.lis.backlog:
            if f.get("type") == "message" and f.get("room") == self.room:
                self.received.append((f.get("seq"), f.get("data")))
            else:
                keep.append(f)
        self.lis.backlog = keep

    def tick(self, every=0.25):
        """Keep both bystanders alive (they answer WebSocket pings while reading) and the room busy."""
        now = time.monotonic()
        if now - self._last_tick < every:
            return
        self._last_tick = now
        self.publish("during attack")
        self._collect()

    def idle(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.tick()
            time.sleep(0.05)

    def check(self):
        assert self.srv.running(), "parleyd is gone"
        t0 = time.monotonic()
        self.publish("after attack")
        self._collect()
        assert time.monotonic() - t0 < 5, "bystanders served slowly after the attack"
        assert self.received == self.acked, "listener missed messages: got %r, acked %r" % (
            self.received, self.acked)
        # The message acknowledged before the attack is still in history, and so is everything since.
        h = self.pub.ok("history", skip=True, room=self.room, before=self.first_seq + 1, limit=1)
        assert [(m["seq"], m["data"]) for m in h["messages"]] == self.acked[:1], h
        h = self.pub.ok("history", skip=True, room=self.room, limit=100)
        stored = {m["seq"]: m["data"] for m in h["messages"]}
        lo = min(stored) if stored else 0
        for seq, data in self.acked:
            if seq >= lo:
                assert stored.get(seq) == data, "acknowledged seq %d lost from history" % seq
        # And a new connection is accepted and sees the room's latest seq.
        fresh = self.srv.client()
        assert fresh.join(self.room)["seq"] == self.acked[-1][0]
        fresh.close_socket()


def closed(c, timeout=5.0):
    """Reads (answering pings) until a close frame or EOF; returns the Close."""
    close, _ = c.recv_close(timeout=timeout)
    assert isinstance(close, Close)
    return close


def next_error(c, timeout=5.0):
    """Next `error` frame's code (fails on anything else)."""
    f = c.next_json(timeout)
    assert f.get("type") == "error" and isinstance(f.get("error"), dict), "want an error frame, got %r" % (f,)
    assert isinstance(f["error"].get("message"), str), f
    return f["error"]["code"]


def reply_code(c, cid, timeout=5.0):
    """The reply with id `cid`: 'ok' or its error code."""
    r = c.wait_reply(cid, skip=True, timeout=timeout)
    return "ok" if r["ok"] is True else r["error"]["code"]


def raw_obj(pairs):
    """JSON object text from (key, raw value text) pairs, so values can be spelled exactly."""
    return "{" + ",".join('"%s":%s' % (k, v) for k, v in pairs) + "}"


def hung_up(sock):
    """Non-blocking: drains what the server sent; True once the server closed the TCP connection."""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_hangups(guard, socks, limit):
    """Ticks the guard until every socket is hung up; returns seconds until each one was."""
    start = time.monotonic()
    when = {}
    while len(when) < len(socks) and time.monotonic() - start < limit:
        guard.tick()
        for i, s in enumerate(socks):
            if i not in when and hung_up(s):
                when[i] = time.monotonic() - start
        time.sleep(0.05)
    return [when.get(i) for i in range(len(socks))]


def masked(payload):
    key = b"\x11\x22\x33\x44"
    return key + _mask(key, payload)


def sendall_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the server closed on us: that is one of the outcomes under test


def read_http_answer(sock, limit):
    """Reads until EOF or a complete response head; returns (bytes, 'eof'|'head'|'timeout')."""
    data = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return data, "eof"
        if not chunk:
            return data, "eof"
        data += chunk
        if b"\r\n\r\n" in data:
            return data, "head"
    return data, "timeout"


# ------------------------------------------------------------------------ truncated headers, stalling


def test_truncated_frame_headers_then_stall_do_not_block_others_and_are_hung_up(parley):
    s = parley(*FAST_PING)
    g = Guard(s)
    cuts = [
        b"\x81",                               # 1 byte of header
        b"\x81\xfe",                           # 16-bit length announced, missing
        b"\x81\xff",                           # 64-bit length announced, missing
        b"\x81\xfe\x00",                       # half of the 16-bit length
        b"\x81\xff\x00\x00\x00\x00",           # half of the 64-bit length
        b"\x81\x85",                           # 5-byte payload announced, mask key missing
    ]
    attackers = []
    for cut in cuts:
        a = s.raw_client()
        a.send_raw(cut)
        attackers.append(a)
    times = wait_hangups(g, [a.sock for a in attackers], limit=8)
    for cut, t in zip(cuts, times):
        assert t is not None, "stalled client (sent %r) still connected after 8 s (ping-timeout 3)" % cut
    g.check()


def test_half_a_frame_then_stall_forever_while_others_publish(parley):
    s = parley(*FAST_PING)
    g = Guard(s)
    a = s.raw_client()
    payload = b'{"type":"ping","id":1,"pad":"' + b"x" * 100 + b'"}'
    frame = encode_frame(OP_TEXT, payload)
    a.send_raw(frame[: len(frame) // 2])  # header and mask complete, half the payload
    [t] = wait_hangups(g, [a.sock], limit=8)
    assert t is not None, "client stalled mid-frame still connected after 8 s (ping-timeout 3)"
    assert len(g.acked) >= 8, "the room did not keep flowing during the stall: %d publishes" % len(g.acked)
    g.check()


# -------------------------------------------------------------------------------- over-long headers


def test_64bit_length_with_top_bit_set_is_refused(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(b"\x81\xff" + struct.pack("!Q", (1 << 63) | 22) + masked(b'{"type":"ping","id":1}'))
    close = closed(c)
    assert close.code in (1002, 1009, None), close
    g.check()


def test_64bit_length_of_2_pow_40_closes_1009(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(b"\x81\xff" + struct.pack("!Q", 1 << 40) + masked(b"x" * 70000))
    assert closed(c).code == 1009
    g.check()


def test_non_minimal_16bit_length_for_10_byte_payload_is_tolerated(srv):
    # RFC 6455 asks for the minimal length encoding; the server accepts the non-minimal one (observed
    # behaviour, harmless). Either way it must survive; this pins down what it does.
    g = Guard(srv)
    c = srv.client()
    p = b'{"type":"ping","id":1}'
    c.send_raw(b"\x81\xfe" + struct.pack("!H", len(p)) + masked(p))
    assert reply_code(c, 1) == "ok"
    p = b'{"type":"ping","id":2}'
    c.send_raw(b"\x81\xff" + struct.pack("!Q", len(p)) + masked(p))  # 64-bit form, same
    assert reply_code(c, 2) == "ok"
    g.check()


# ------------------------------------------------------------------------------- framing violations


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_reserved_bit_without_extension_closes_1002_or_hangs_up(srv, rsv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(encode_frame(OP_TEXT, b'{"type":"ping","id":1}', rsv=rsv))
    close, skipped = c.recv_close(timeout=5)
    assert skipped == 0, "a frame with reserved bits set was processed"
    assert close.code in PROTOCOL_ERROR, close
    g.check()


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcode_closes_1002_or_hangs_up(srv, opcode):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(encode_frame(opcode, b'{"type":"ping","id":1}'))
    close, skipped = c.recv_close(timeout=5)
    assert skipped == 0, "a frame with opcode %#x was processed" % opcode
    assert close.code in PROTOCOL_ERROR, close
    g.check()


def test_control_frame_longer_than_125_bytes_closes_1002_or_hangs_up(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(encode_frame(OP_PING, b"p" * 126))
    close, skipped = c.recv_close(timeout=5)
    assert close.code in PROTOCOL_ERROR, close
    g.check()


def test_fragmented_control_frame_closes_1002_or_hangs_up(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(encode_frame(OP_PING, b"abc", fin=False) + encode_frame(OP_CONT, b"def", fin=True))
    close, skipped = c.recv_close(timeout=5)
    assert close.code in PROTOCOL_ERROR, close
    g.check()


def test_continuation_with_nothing_to_continue_closes_1002_or_hangs_up(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(encode_frame(OP_CONT, b'{"type":"ping","id":1}', fin=True))
    close, skipped = c.recv_close(timeout=5)
    assert skipped == 0, "a lone continuation frame was processed as a message"
    assert close.code in PROTOCOL_ERROR, close
    g.check()


def test_new_text_frame_inside_fragmented_message_closes_1002_or_hangs_up(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_raw(encode_frame(OP_TEXT, b'{"type":"ping",', fin=False)
               + encode_frame(OP_TEXT, b'{"type":"ping","id":2}', fin=True)
               + encode_frame(OP_CONT, b'"id":1}', fin=True))
    close, skipped = c.recv_close(timeout=5)
    assert skipped == 0, "the interleaved message was processed"
    assert close.code in PROTOCOL_ERROR, close
    g.check()


# ------------------------------------------------------------------------------------- invalid UTF-8


BAD_UTF8 = {
    "in_string": [b'{"type":"ping","id":1,"x":"a\xffb"}'],
    "in_key": [b'{"type":"ping","id":1,"k\xc3":1}'],
    "in_room": [b'{"type":"join","id":1,"room":"lo\xfebby"}'],
    "split_across_fragments": [b'{"type":"ping","id":1,"x":"\xe2\x82', b'(\xe2\x82"}'],
    "truncated_at_end_of_fragmented_message": [b'{"type":"ping","id":1}', b"\xf0\x9f\xa6"],
    "overlong_2byte_slash": [b'{"type":"ping","id":1,"x":"\xc0\xaf"}'],
    "overlong_3byte_slash": [b'{"type":"ping","id":1,"x":"\xe0\x80\xaf"}'],
    "overlong_4byte_slash": [b'{"type":"ping","id":1,"x":"\xf0\x80\x80\xaf"}'],
    "overlong_nul": [b'{"type":"ping","id":1,"x":"\xc0\x80"}'],
    "surrogate_d800": [b'{"type":"ping","id":1,"x":"\xed\xa0\x80"}'],
    "surrogate_pair_dbff_dfff": [b'{"type":"ping","id":1,"x":"\xed\xaf\xbf\xed\xbf\xbf"}'],
    "above_10ffff": [b'{"type":"ping","id":1,"x":"\xf4\x90\x80\x80"}'],
    "byte_ff": [b'{"type":"ping","id":1,"x":"\xff"}'],
    "byte_fe": [b'{"type":"ping","id":1,"x":"\xfe"}'],
    "lone_continuation_byte": [b'{"type":"ping","id":1,"x":"\x80"}'],
    "outside_any_string": [b'{"type":"ping","id":1}\xff'],
}


@pytest.mark.parametrize("case", sorted(BAD_UTF8))
def test_invalid_utf8_closes_1007(srv, case):
    g = Guard(srv)
    c = srv.client()
    parts = BAD_UTF8[case]
    wire = b""
    for i, p in enumerate(parts):
        wire += encode_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))
    c.send_raw(wire)
    close, skipped = c.recv_close(timeout=5)
    assert skipped == 0, "a frame with invalid UTF-8 was processed"
    assert close.code == 1007, close
    g.check()


# ------------------------------------------------------------------------------------------ NUL bytes


@pytest.mark.parametrize("text", [b'{"type":"ping",\x00"id":1}', b'\x00{"type":"ping","id":1}',
                                  b'{"type":"ping","id":1,"x":"a\x00b"}'],
                         ids=["between_members", "leading", "raw_inside_string"])
def test_raw_nul_byte_in_frame_is_bad_json(srv, text):
    # A raw NUL is valid UTF-8 but never valid JSON (outside strings it is not whitespace; inside a
    # string a control character must be escaped).
    g = Guard(srv)
    c = srv.client()
    c.send_text(text)
    assert next_error(c) == "bad_json"
    assert c.ok("ping")  # the connection stays usable
    g.check()


def test_escaped_nul_in_name_is_bad_name(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_text('{"type":"hello","id":1,"name":"al\\u0000ice"}')
    assert reply_code(c, 1) == "bad_name"
    c.send_text('{"type":"hello","id":2,"name":"\\u0000"}')
    assert reply_code(c, 2) == "bad_name"
    g.check()


def test_escaped_nul_in_room_is_bad_room(srv):
    g = Guard(srv)
    c = srv.client()
    c.send_text('{"type":"join","id":1,"room":"lob\\u0000by"}')
    assert reply_code(c, 1) == "bad_room"
    c.send_text('{"type":"join","id":2,"room":"safe\\u0000"}')
    assert reply_code(c, 2) == "bad_room"
    g.check()


@pytest.mark.parametrize("raw,value", [
    pytest.param('{"s":"a\\u0000b","t":["\\u0000"]}', {"s": "a\x00b", "t": ["\x00"]}, id="in_strings"),
    pytest.param('"\\u0000\\u0000"', "\x00\x00", id="whole_string"),
    pytest.param('{"\\u0000k":1}', {"\x00k": 1}, id="in_object_key"),
])
def test_escaped_nul_in_data_is_delivered_intact(srv, raw, value):
    g = Guard(srv)
    c = srv.client("nul")
    c.join("nulroom")
    c.send_text('{"type":"publish","id":9,"room":"nulroom","data":%s}' % raw)
    m = c.recv_message()
    assert m.opcode == OP_TEXT and m.text.endswith('"data":%s}' % raw), m.text
    assert json.loads(m.text)["data"] == value
    assert reply_code(c, 9) == "ok"
    h = c.ok("history", room="nulroom")
    assert h["messages"][0]["data"] == value
    g.check()


# ------------------------------------------------------------------------------------- deep nesting
# docs/protocol.md §4/§12: a frame may not "nest arrays and objects more than 32 levels deep". The
# frame's own object is level 1, so `data` (level 2) may hold 31 levels; 32 levels of data is depth 33.


def nested(kind, levels):
    if kind == "arrays":
        return "[" * levels + "]" * levels
    if kind == "objects":
        return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)
    # alternating, innermost a number
    out = "1"
    for i in range(levels):
        out = "[%s]" % out if i % 2 == 0 else '{"a":%s}' % out
    return out


@pytest.mark.parametrize("kind", ["arrays", "objects", "mixed"])
def test_frame_nested_32_levels_deep_is_accepted_and_forwarded(srv, kind):
    g = Guard(srv)
    c = srv.client("deep")
    c.join("deep")
    data = nested(kind, 31)  # frame object + 31 = 32 levels
    c.send_text('{"type":"publish","id":7,"room":"deep","data":%s}' % data)
    m = c.recv_message()
    assert ('"data":%s}' % data) in m.text, m.text[:300]
    assert reply_code(c, 7) == "ok"
    g.check()


@pytest.mark.parametrize("kind", ["arrays", "objects", "mixed"])
def test_frame_nested_33_levels_deep_is_bad_request(srv, kind):
    g = Guard(srv)
    c = srv.client("deep")
    c.join("deep")
    data = nested(kind, 32)  # frame object + 32 = 33 levels
    c.send_text('{"type":"publish","room":"deep","data":%s}' % data)  # no id: error frame
    assert next_error(c) == "bad_request"
    assert c.ok("publish", room="deep", data=1, echo=False)["seq"] == 1  # nothing was published before
    g.check()


@pytest.mark.parametrize("levels,closed_brackets,flags", [
    (65536 - 19, False, ()),
    (32000, True, ()),
    (100000, False, ("--max-message-size", "262144")),
    (100000, True, ("--max-message-size", "262144")),
], ids=["64KiB_of_open_brackets", "32000_closed_in_64KiB", "100000_open_256KiB_limit",
        "100000_closed_256KiB_limit"])
def test_huge_nesting_is_bad_request_quickly(parley, levels, closed_brackets, flags):
    # 100,000 '[' do not fit in a default 64 KiB frame: the default-limit cases fill one frame as far as
    # it goes, the others raise --max-message-size so that exactly 100,000 nested arrays arrive at once.
    s = parley(*flags)
    g = Guard(s)
    c = s.client()
    text = '{"type":"ping","x":' + "[" * levels + ("]" * levels + "}" if closed_brackets else "")
    assert len(text) <= (262144 if flags else 65536)
    t0 = time.monotonic()
    c.send_text(text)
    assert next_error(c) == "bad_request"
    assert time.monotonic() - t0 < 2, "a deep frame took %.1f s to refuse" % (time.monotonic() - t0)
    assert c.ok("ping")
    g.check()


# ----------------------------------------------------------------------------------------- many keys
# docs/protocol.md §4/§12: at most 4096 object keys in the whole frame, the frame's own keys included.


def keyed_publish(room, total_keys, cid=None):
    top = [("type", '"publish"'), ("room", '"%s"' % room)]
    if cid is not None:
        top.append(("id", str(cid)))
    n = total_keys - len(top) - 1  # minus "data" itself
    data = "{" + ",".join('"k%d":0' % i for i in range(n)) + "}"
    return raw_obj(top + [("data", data)]), data


def test_4096_keys_in_one_frame_are_accepted(srv):
    g = Guard(srv)
    c = srv.client("keys")
    c.join("keys")
    text, data = keyed_publish("keys", 4096, cid=5)
    c.send_text(text)
    m = c.recv_message()
    assert ('"data":%s}' % data) in m.text
    assert reply_code(c, 5) == "ok"
    g.check()


@pytest.mark.parametrize("total", [4097, 5000, 6000])
def test_more_than_4096_keys_in_one_frame_is_bad_request(srv, total):
    g = Guard(srv)
    c = srv.client("keys")
    c.join("keys")
    text, _ = keyed_publish("keys", total)  # no id: error frame
    assert len(text) <= 65536
    c.send_text(text)
    assert next_error(c) == "bad_request"
    assert c.ok("publish", room="keys", data=1, echo=False)["seq"] == 1
    g.check()


@pytest.mark.parametrize("what", ["depth_33", "keys_4097"])
def test_shape_limit_with_valid_id_is_answered_by_reply(srv, what):
    c = srv.client("shape")
    c.join("shape")
    if what == "depth_33":
        text = '{"type":"publish","id":42,"room":"shape","data":%s}' % nested("arrays", 32)
    else:
        text, _ = keyed_publish("shape", 4097, cid=42)
    c.send_text(text)
    f = c.next_json()
    assert f.get("type") == "reply" and f.get("id") == 42 and f.get("ok") is False, f
    assert f["error"]["code"] == "bad_request"


@pytest.mark.parametrize("fragmented", [False, True], ids=["one_frame", "fragmented"])
def test_100000_key_object_bigger_than_max_message_size_closes_1009(srv, fragmented):
    g = Guard(srv)
    c = srv.client()
    text = '{"type":"ping","id":1,"x":{' + ",".join('"k%d":0' % i for i in range(100000)) + "}}"
    assert len(text) > 65536
    if fragmented:
        data = text.encode()
        n = 40
        step = len(data) // n + 1
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        wire = b"".join(encode_frame(OP_TEXT if i == 0 else OP_CONT, ch, fin=(i == len(chunks) - 1))
                        for i, ch in enumerate(chunks))
    else:
        wire = encode_frame(OP_TEXT, text)
    t = threading.Thread(target=sendall_quietly, args=(c.sock, wire))
    t.start()
    close = closed(c, timeout=10)
    t.join(10)
    assert close.code == 1009, close
    g.check()


# --------------------------------------------------------------------------------------- huge numbers

HUGE = {
    "2^53": "9007199254740992",
    "2^63": "9223372036854775808",
    "2^64": "18446744073709551616",
    "1e308": "1e308",
    "10^400": "1" + "0" * 400,
}
BAD_NUMBERS = {"-1": "-1", "0.5": "0.5", "1.0": "1.0", "1e2": "1e2"}
def number_cases():
    out = []
    for field in ("id", "since", "before", "limit"):
        for name, v in list(HUGE.items()) + list(BAD_NUMBERS.items()):
            out.append(pytest.param(field, v, id="%s=%s" % (field, name)))
        out.append(pytest.param(field, "-0.0", id="%s=-0.0" % field))
    out.append(pytest.param("id", "0", id="id=0"))
    out.append(pytest.param("before", "0", id="before=0"))
    out.append(pytest.param("limit", "0", id="limit=0"))
    out.append(pytest.param("limit", "101", id="limit=101"))
    return out


@pytest.mark.parametrize("field,value", number_cases())
def test_out_of_range_or_non_integer_number_is_bad_request(srv, field, value):
    g = Guard(srv)
    c = srv.client()
    c.join("nums")
    if field == "id":
        c.send_text('{"type":"ping","id":%s}' % value)
        assert next_error(c) == "bad_request"
    else:
        if field == "since":
            c.send_text('{"type":"join","id":3,"room":"nums2","since":%s}' % value)
        else:
            c.send_text('{"type":"history","id":3,"room":"nums","%s":%s}' % (field, value))
        f = c.next_json()  # nothing else is in flight: this must be the reply
        assert f.get("type") == "reply" and f.get("id") == 3 and f.get("ok") is False, f
        assert f["error"]["code"] == "bad_request", f
        if field == "since":
            assert c.err("publish", room="nums2", data=1) == "not_member"  # the join had no effect
    assert c.ok("ping")
    g.check()


@pytest.mark.parametrize("raw", [
    pytest.param("1" + "0" * 400, id="10^400"),
    pytest.param("1e400", id="1e400"),
    pytest.param("-0.0", id="-0.0"),
    pytest.param("1e-400", id="1e-400"),
    pytest.param("123456789012345678901234567890", id="30_digits"),
    pytest.param("-9223372036854775809", id="below_int64"),
    pytest.param("9223372036854775807", id="int64_max"),
    pytest.param("0.1", id="0.1"),
    pytest.param("-1E+308", id="-1E+308"),
    pytest.param("[-0.0,1e-400,0.10000000000000000000001]", id="array"),
])
def test_numbers_in_data_are_forwarded_byte_identical(srv, raw):
    g = Guard(srv)
    c = srv.client("num")
    d = srv.client("num-reader")
    c.join("nums")
    d.join("nums")
    c.send_text('{"type":"publish","id":4,"room":"nums","data":%s}' % raw)
    m = c.recv_message()
    assert m.opcode == OP_TEXT and m.text.endswith('"data":%s}' % raw), m.text[:300]
    assert reply_code(c, 4) == "ok"
    m = d.recv_message()
    assert m.text.endswith('"data":%s}' % raw), m.text[:300]
    c.send_cmd("history", room="nums")
    m = c.recv_message()
    assert ('"data":%s}' % raw) in m.text, m.text[:300]
    g.check()


def test_big_integer_in_data_without_id_is_forwarded_byte_identical(srv):
    # The same without an id (fire-and-forget), where a decoder has no id to get wrong.
    g = Guard(srv)
    c = srv.client("num")
    c.join("nums")
    for raw in ("123456789012345678901234567890", "18446744073709551616", "-9223372036854775809"):
        c.send_text('{"type":"publish","room":"nums","data":%s}' % raw)
        m = c.recv_message()
        assert m.opcode == OP_TEXT and m.text.endswith('"data":%s}' % raw), m.text[:300]
    g.check()


def test_big_integer_in_an_ignored_field_does_not_invalidate_the_id(srv):
    # Regression: the jansson-based decoder re-parsed a frame holding an integer beyond int64 with
    # every integer as a real, so the valid id turned into 7.0 and the command was refused.
    c = srv.client()
    c.send_text('{"type":"ping","id":7,"extra":18446744073709551616}')
    f = c.next_json()
    assert f.get("type") == "reply" and f.get("id") == 7 and f.get("ok") is True, f


# ---------------------------------------------------------------------------------------- wrong types

STRING_WRONG = {"number": "1", "true": "true", "null": "null", "array": '["x"]', "object": '{"x":"y"}'}
BOOL_WRONG = {"string": '"true"', "number": "1", "null": "null", "array": "[true]", "object": "{}"}
INT_WRONG = {"string": '"1"', "true": "true", "null": "null", "array": "[1]", "object": '{"n":1}'}

# command -> its full set of fields (raw JSON) with valid values
COMMANDS = {
    "hello": [("type", '"hello"'), ("id", "1"), ("name", '"alice"')],
    "hello+token": [("type", '"hello"'), ("id", "1"), ("name", '"alice"'), ("token", '"abc"')],
    "join": [("type", '"join"'), ("id", "1"), ("room", '"wt"'), ("presence", "true"), ("since", "0")],
    "leave": [("type", '"leave"'), ("id", "1"), ("room", '"wt"')],
    "publish": [("type", '"publish"'), ("id", "1"), ("room", '"wt"'), ("data", "1"), ("echo", "true"),
                ("persist", "true"), ("durable", "false")],
    "history": [("type", '"history"'), ("id", "1"), ("room", '"wt"'), ("before", "5"), ("limit", "10")],
    "presence": [("type", '"presence"'), ("id", "1"), ("room", '"wt"')],
    "ping": [("type", '"ping"'), ("id", "1")],
}
FIELD_KIND = {"type": STRING_WRONG, "name": STRING_WRONG, "room": STRING_WRONG, "token": STRING_WRONG,
              "presence": BOOL_WRONG, "echo": BOOL_WRONG, "persist": BOOL_WRONG, "durable": BOOL_WRONG,
              "id": dict(INT_WRONG, fraction="1.5"), "since": INT_WRONG, "before": INT_WRONG,
              "limit": INT_WRONG}


def wrong_type_cases():
    out = []
    for cmd, fields in COMMANDS.items():
        for key, _ in fields:
            if key in FIELD_KIND:
                out.append(pytest.param(cmd, key, id="%s.%s" % (cmd, key)))
    return out


@pytest.mark.parametrize("cmd,field", wrong_type_cases())
def test_wrong_json_type_is_bad_request(srv, cmd, field):
    g = Guard(srv)
    c = srv.client("typist")
    c.join("wt")
    for i, (kind, bad) in enumerate(sorted(FIELD_KIND[field].items())):
        cid = 100 + i
        pairs = [(k, (bad if k == field else (str(cid) if k == "id" else v))) for k, v in COMMANDS[cmd]]
        text = raw_obj(pairs)
        c.send_text(text)
        if field == "id":
            assert next_error(c) == "bad_request", text  # no usable id: an error frame
        else:
            code = reply_code(c, cid)
            assert code == "bad_request", "%s -> %r" % (text, code)
    assert c.ok("ping")
    # Nothing took effect: still named typist, still only in wt, nothing published in wt.
    assert c.ok("presence", room="wt")["members"] and c.ok("history", room="wt")["messages"] == []
    g.check()


# ----------------------------------------------------------------------- unicode in names and rooms

GOOD_NAMES = {
    "32_emoji": "\U0001F98A" * 32,
    "emoji_with_text": "Bob the \U0001F98A",
    "combining_acute": "Zoe\u0301",
    "32_combining_codepoints": "e\u0301" * 16,
    "rtl_marks": "\u200fabc\u200e",
    "rtl_override": "\u202eevil\u202c",
    "zero_width_joiner_family": "\U0001F468\u200d\U0001F469\u200d\U0001F467",
    "nbsp_and_bom": "a\u00a0b\ufeff",
    "supplementary_cjk": "\U00020000\U0002A6D6",
    "a0_first_after_c1": "\u00a0",
}
BAD_NAMES = {
    "33_emoji": "\U0001F98A" * 33,
    "33_combining_codepoints": "e\u0301" * 16 + "e",
    "nul": "\x00",
    "tab": "a\tb",
    "newline": "a\nb",
    "unit_separator_1f": "a\x1f",
    "del_7f": "a\x7f",
    "c1_80": "a\u0080",
    "c1_85_nel": "a\u0085b",
    "c1_9f": "\u009fa",
    "empty": "",
}


def send_named(c, type_, cid, escaped, **fields):
    """Sends a command whose strings are either \\u-escaped (ASCII-only JSON, surrogate pairs for emoji)
    or raw UTF-8 (JSON then escapes only what it must: C0 controls, quote and backslash)."""
    obj = {"type": type_, "id": cid}
    obj.update(fields)
    c.send_text(json.dumps(obj, separators=(",", ":"), ensure_ascii=escaped))


ENCODINGS = pytest.mark.parametrize("escaped", [False, True], ids=["raw_utf8", "escaped"])


@ENCODINGS
@pytest.mark.parametrize("key", sorted(GOOD_NAMES))
def test_unicode_name_without_control_characters_is_accepted(srv, key, escaped):
    g = Guard(srv)
    c = srv.client()
    name = GOOD_NAMES[key]
    send_named(c, "hello", 1, escaped, name=name)
    r = c.wait_reply(1)
    assert r["ok"] is True and r["data"]["user"] == name, r
    c.join("uni")
    c.send_cmd("publish", room="uni", data="x")
    m = c.next_json()
    assert m["type"] == "message" and m["from"] == name, m
    g.check()


@ENCODINGS
@pytest.mark.parametrize("key", sorted(BAD_NAMES))
def test_control_characters_or_too_long_name_is_bad_name(srv, key, escaped):
    g = Guard(srv)
    c = srv.client()
    before = c.user
    send_named(c, "hello", 1, escaped, name=BAD_NAMES[key])
    assert reply_code(c, 1) == "bad_name"
    c.join("uni")
    c.send_cmd("publish", room="uni", data="x")
    assert c.next_json()["from"] == before  # the connection kept its previous name
    g.check()


@ENCODINGS
@pytest.mark.parametrize("room", ["caf\u00e9", "lobby\U0001F98A", "\u00a0", "lob\u200bby", "\uff4c\uff4f\uff42",
                                  "room\u0301", "x" * 127 + "\u00e9", "lob\u0085by", "\u0000"],
                         ids=["accent", "emoji", "nbsp", "zero_width_space", "fullwidth", "combining",
                              "128_chars_last_non_ascii", "c1_nel", "nul"])
def test_any_non_ascii_in_room_is_bad_room(srv, room, escaped):
    g = Guard(srv)
    c = srv.client()
    send_named(c, "join", 1, escaped, room=room)
    assert reply_code(c, 1) == "bad_room"
    send_named(c, "publish", 2, escaped, room=room, data=1)
    assert reply_code(c, 2) == "bad_room"
    g.check()


def test_64_top_level_fields_are_accepted_65_are_bad_request_with_the_id(srv):
    # docs/protocol.md §12: at most 64 fields in the command object
    c = srv.client()
    ok = raw_obj([("type", '"ping"'), ("id", "1")] + [("x%d" % i, "0") for i in range(62)])
    c.send_text(ok)
    f = c.next_json()
    assert f.get("type") == "reply" and f.get("id") == 1 and f.get("ok") is True, f
    bad = raw_obj([("type", '"ping"'), ("id", "2")] + [("x%d" % i, "0") for i in range(63)])
    c.send_text(bad)
    f = c.next_json()
    assert f.get("type") == "reply" and f.get("id") == 2 and f.get("ok") is False, f
    assert f["error"]["code"] == "bad_request", f


# -------------------------------------------------------------------------------------------- floods


def join_flood(srv, n=5000, keep_going=0.0, limit=20.0):
    """One connection sends n joins back to back (then, for keep_going seconds, pings) from a thread
    while this thread reads. Returns ({reply code: count}, Close or None)."""
    a = srv.client()
    wire = b"".join(encode_frame(OP_TEXT, '{"type":"join","id":%d,"room":"flood"}' % i)
                    for i in range(1, n + 1))
    ping = encode_frame(OP_TEXT, '{"type":"ping"}')

    def send():
        try:
            a.sock.sendall(wire)
            end = time.monotonic() + keep_going
            while time.monotonic() < end:
                a.sock.sendall(ping)
                time.sleep(0.001)
        except OSError:
            pass  # closed on us

    t = threading.Thread(target=send)
    t0 = time.monotonic()
    t.start()
    codes = {}
    close = None
    try:
        while sum(codes.values()) < n and time.monotonic() - t0 < limit:
            m = a.recv_message(timeout=max(0.01, limit - (time.monotonic() - t0)))
            if isinstance(m, Close):
                close = m
                break
            f = json.loads(m.text)
            assert f.get("type") == "reply", f
            code = "ok" if f["ok"] else f["error"]["code"]
            codes[code] = codes.get(code, 0) + 1
    finally:
        t.join(keep_going + 10)
        a.close_socket()
    assert time.monotonic() - t0 < limit + 1, "flood not over after %.0f s" % limit
    return codes, close


def test_join_flood_with_default_limits_is_rate_limited_and_server_survives(parley):
    s = parley(*DEFAULT_RATES)
    g = Guard(s)
    codes, close = join_flood(s)
    assert codes.get("rate_limited", 0) > 0, (codes, close)
    assert set(codes) <= {"ok", "rate_limited"}, codes
    assert 20 <= codes.get("ok", 0) <= 200, codes  # a burst of 40, refilled at 20/s
    # Ends with close 4029, or all 5000 answered; never a bare drop (parleyd lingers after its
    # close frame, so a client still sending does not get a reset: linger.h).
    assert close is None or close.code == 4029, close
    assert close is not None or sum(codes.values()) == 5000, codes
    assert "reason=rate_limited" in s.log()
    g.check()


def test_client_that_keeps_flooding_receives_close_4029(parley):
    # Used to get a TCP reset instead of the 4029 frame: parleyd hung up with unread input in the
    # socket. It now lingers (linger.h): write side shut, input discarded until the peer closes.
    s = parley(*DEFAULT_RATES)
    g = Guard(s)
    got = []
    for _ in range(6):  # the loss is a race: six floods in a row must all see the 4029 frame
        codes, close = join_flood(s, n=5000, keep_going=2.0, limit=10.0)
        got.append(close)
        assert codes.get("rate_limited", 0) > 0, codes
    assert all(c is not None and c.code == 4029 for c in got), got
    g.check()


def test_129th_distinct_room_is_too_many_rooms(parley):
    s = parley("--rate-joins", "1000000")
    g = Guard(s)
    c = s.client()
    for i in range(1, 130):
        c.send_cmd("join", id=i, room="r%d" % i)
    codes = [reply_code(c, i) for i in range(1, 130)]
    assert codes[:128] == ["ok"] * 128, codes
    assert codes[128] == "too_many_rooms", codes
    assert c.ok("join", room="r1")  # re-joining a room it is in is fine
    c.ok("leave", room="r1")
    assert c.ok("join", room="r129")["room"] == "r129"  # room freed
    g.check()


def test_500_connections_that_only_upgrade_do_not_disturb_a_publisher(srv):
    g = Guard(srv)
    idle = []
    t0 = time.monotonic()
    for i in range(500):
        idle.append(WSClient(HOST, srv.port, timeout=5))  # upgrade, then never read or send
        if i % 50 == 49:
            g.publish("while connecting")
            g._collect()
        assert time.monotonic() - t0 < 30, "opening idle connections is too slow"
    for _ in range(20):
        g.publish("with 500 idle connections")
    g.check()
    for c in idle[:5]:  # they are still open and were sent their welcome
        m = c.recv_message(timeout=5)
        assert json.loads(m.text)["type"] == "welcome"
    for c in idle:
        c.close_socket()
    g.check()


# ---------------------------------------------------------------------------- garbage before upgrade

GARBAGE = {
    "random_bytes": random.Random(20261126).randbytes(4096),
    "random_bytes_with_crlfcrlf": random.Random(7).randbytes(2000) + b"\r\n\r\n",
    "http_1_0_get_ws": b"GET /ws HTTP/1.0\r\n\r\n",
    "http_1_0_upgrade": (b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
    "huge_header_100KB": (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                          b"X-Big: " + b"a" * 100000 + b"\r\n\r\n"),
    "websocket_frame_instead_of_http": encode_frame(OP_TEXT, b'{"type":"ping","id":1}'),
    "nul_bytes": b"\x00" * 1024,
}


@pytest.mark.parametrize("key", sorted(GARBAGE))
def test_garbage_before_upgrade_gets_an_error_or_a_close(srv, key):
    g = Guard(srv)
    sock = socket.create_connection((HOST, srv.port), timeout=5)
    try:
        t = threading.Thread(target=sendall_quietly, args=(sock, GARBAGE[key]))
        t.start()
        data, how = read_http_answer(sock, 12)
        t.join(5)
    finally:
        sock.close()
    assert how != "timeout" or data, "no answer and no close within 12 s"
    if data:
        assert data.startswith(b"HTTP/1."), data[:200]
        status = int(data.split(b" ", 2)[1])
        assert 400 <= status < 600, "garbage got %r" % data[:200]
    g.check()
    st, _, body = srv.http_get("/healthz")
    assert st == 200 and body == b"ok\n"
