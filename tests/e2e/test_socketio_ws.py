"""Socket.IO over the Engine.IO WebSocket transport at /socket.io/, on the wire (raw frames).

What socket.io-client does is tested with the real client in tests/sio; here each packet is written by
hand, so every refusal, bound and close can be checked exactly (docs/socketio.md).
"""

import base64
import json
import socket
import time

import pytest

from conftest import HOST, HandshakeError, WSClient, Close
from test_auth import SECRET, token, claims

PATH = "/socket.io/?EIO=4&transport=websocket"
FAST = ["--sio-ping-interval", "300", "--sio-ping-timeout", "200"]


def text(m):
    assert not isinstance(m, Close), "closed: %r" % (m,)
    return m.payload.decode()


def open_eio(srv, path=PATH):
    c = srv.raw_client(path=path)
    o = text(c.recv_message())
    assert o[0] == "0"
    return c, json.loads(o[1:])


def connect(srv, auth=None, path=PATH):
    """An Engine.IO session with Socket.IO CONNECT done; returns (client, welcome)."""
    c, _ = open_eio(srv, path)
    c.send_text("40" + (json.dumps(auth) if auth is not None else ""))
    ok = text(c.recv_message())
    assert ok.startswith("40{"), ok
    keys = set(json.loads(ok[2:]))
    assert keys == {"sid", "pid"} or keys == {"sid"}, keys
    w = text(c.recv_message())
    assert w.startswith('42["welcome",'), w
    return c, json.loads(w[2:])[1]


def event(c, timeout=None):
    """The next Socket.IO EVENT/ACK, skipping Engine.IO pings (answered)."""
    while True:
        t = text(c.recv_message(timeout=timeout))
        if t == "2":
            c.send_text("3")
            continue
        return t


def ack(c, ack_id, name, arg):
    c.send_text("42%d%s" % (ack_id, json.dumps([name, arg])))
    t = event(c)
    prefix = "43%d" % ack_id
    while not t.startswith(prefix):
        t = event(c)
    return json.loads(t[len(prefix):])[0]


def expect_closed(c, timeout=3.0):
    m = c.recv_message(timeout=timeout)
    while not isinstance(m, Close):
        m = c.recv_message(timeout=timeout)
    return m


def http_error(srv, path):
    """A WebSocket upgrade that must be refused: (status, headers, body)."""
    s = socket.create_connection((HOST, srv.port), timeout=5)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % path).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            assert d, "closed before the headers: %r" % buf
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        assert status != 101
        return status, headers, body
    finally:
        s.close()


# ---------------------------------------------------------------- handshake


def test_open_packet(parley):
    srv = parley(*FAST, "--sio-max-payload", "5000")
    _, o = open_eio(srv)
    assert set(o) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert len(o["sid"]) == 20 and all(ch.isalnum() or ch in "-_" for ch in o["sid"])
    assert o["upgrades"] == []
    assert (o["pingInterval"], o["pingTimeout"], o["maxPayload"]) == (300, 200, 5000)


def test_open_defaults(parley):
    _, o = open_eio(parley())
    assert (o["pingInterval"], o["pingTimeout"], o["maxPayload"]) == (25000, 20000, 1000000)


@pytest.mark.parametrize("query,code", [
    ("transport=websocket", 5),            # EIO missing
    ("EIO=3&transport=websocket", 5),      # Socket.IO v2 clients
    ("EIO=abc&transport=websocket", 5),
    ("EIO=4", 0),                          # transport missing
    ("EIO=4&transport=abc", 0),
    ("EIO=4&transport=polling", 3),        # polling is not an upgrade
    ("EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", 1),
])
def test_handshake_errors(parley, query, code):
    srv = parley()
    status, headers, body = http_error(srv, "/socket.io/?" + query)
    assert status == 400
    assert headers.get("content-type") == "application/json"
    messages = {0: "Transport unknown", 1: "Session ID unknown", 3: "Bad request",
                5: "Unsupported protocol version"}
    assert json.loads(body) == {"code": code, "message": messages[code]}


def test_sio_off_is_404(parley):
    srv = parley("--sio", "0")
    status, _, _ = http_error(srv, PATH)
    assert status == 404


# ---------------------------------------------------------------- heartbeat


def test_ping_pong_keeps_the_session(parley):
    srv = parley(*FAST)
    c, _ = connect(srv)
    for _ in range(3):
        assert text(c.recv_message(timeout=2)) == "2"
        c.send_text("3")
    # still alive: a command is answered
    assert ack(c, 0, "hello", {"name": "pinger"}) == {"ok": True, "data": {"user": "pinger"}}


def test_missed_pong_closes(parley):
    srv = parley(*FAST)
    c, _ = open_eio(srv)
    t0 = time.monotonic()
    assert text(c.recv_message(timeout=2)) == "2"
    expect_closed(c)
    # ping at 300 ms, closed once the 200 ms pong wait is over
    assert 0.45 <= time.monotonic() - t0 < 2.0
    assert "ping timeout" in srv.log()


def test_heartbeat_on_time_while_packets_flow(parley):
    """The session timer is not re-armed for every packet (it runs to the next ping or pong deadline,
    and fires early at worst): with packets in and out all the time, a ping still comes a pingInterval
    after the last pong, never sooner, and an unanswered one still closes the session a pingTimeout
    later."""
    srv = parley(*FAST)
    c, _ = connect(srv)
    assert ack(c, 0, "join", {"room": "hb"})["ok"] is True
    k, pongs, gaps = 1, [], []

    def publish_and_wait(answer):
        """One publish with an ack; every message until the ack. Returns the Close if it closed."""
        nonlocal k
        k += 1
        try:
            c.send_text("42%d%s" % (k, json.dumps(["publish", {"room": "hb", "data": k}])))
        except OSError:
            pass
        while True:
            m = c.recv_message(timeout=3)
            if isinstance(m, Close):
                return m
            t = text(m)
            if t == "2":
                now = time.monotonic()
                if pongs:
                    gaps.append(now - pongs[-1])
                if not answer:
                    return now
                c.send_text("3")
                pongs.append(time.monotonic())
            elif t.startswith("43%d" % k):
                return None

    t0 = time.monotonic()
    while len(pongs) < 4:
        assert publish_and_wait(True) is None
        time.sleep(0.01)
        assert time.monotonic() - t0 < 10, "no pings while messages flow"
    # 300 ms after each pong (the machine may be slow, never early)
    assert all(0.28 <= g < 1.5 for g in gaps), gaps
    # now the pings go unanswered, messages still flowing both ways
    ping_at = None
    while ping_at is None:
        r = publish_and_wait(False)
        assert not isinstance(r, Close), "closed before the ping"
        ping_at = r
    closed = None
    while closed is None:
        r = publish_and_wait(False)
        if isinstance(r, Close):
            closed = time.monotonic()
        time.sleep(0.01)
        assert time.monotonic() - ping_at < 3, "a missed pong did not close the session"
    # pingTimeout 200 ms after the ping
    assert 0.18 <= closed - ping_at < 1.5
    assert "ping timeout" in srv.log()


def test_connect_timeout(parley):
    srv = parley("--sio-connect-timeout", "300")
    c, _ = open_eio(srv)
    t0 = time.monotonic()
    expect_closed(c)
    assert 0.25 <= time.monotonic() - t0 < 2.0


# ---------------------------------------------------------------- connect / disconnect / close


def test_connect_main_namespace(parley):
    c, w = connect(parley(), auth={"name": "zoe"})
    assert w["user"] == "zoe"


def test_connect_without_recovery_has_no_pid(parley):
    c, _ = open_eio(parley("--sio-recovery", "0"))
    c.send_text("40")
    ok = text(c.recv_message())
    assert set(json.loads(ok[2:])) == {"sid"}
    w = text(c.recv_message())
    c.send_text('42["join",{"room":"np"}]')
    c.send_text('42["publish",{"room":"np","data":1}]')
    t = event(c)
    assert len(json.loads(t[2:])) == 2  # no offset


def test_connect_main_namespace_welcome(parley):
    c, w = connect(parley(), auth={"name": "zoe"})
    assert w["user"] == "zoe"
    assert set(w) == {"session", "user", "server", "limits"}


def test_connect_guest_name(parley):
    _, w = connect(parley())
    assert w["user"].startswith("guest-")


def test_connect_bad_name_is_connect_error(parley):
    c, _ = open_eio(parley())
    c.send_text('40{"name":""}')
    t = text(c.recv_message())
    assert t.startswith("44{"), t
    assert json.loads(t[2:])["data"]["code"] == "bad_name"


def test_other_namespace(parley):
    c, _ = open_eio(parley())
    c.send_text("40/custom,")
    assert text(c.recv_message()) == '44/custom,{"message":"Invalid namespace"}'
    # the connection stays usable for "/"
    c.send_text("40")
    assert text(c.recv_message()).startswith("40{")


def test_second_connect_ignored(parley):
    c, _ = connect(parley())
    c.send_text("40")
    assert ack(c, 1, "hello", {"name": "x"})["ok"] is True


def test_client_disconnect_closes(parley):
    c, _ = connect(parley())
    c.send_text("41")
    expect_closed(c)


def test_engine_close_closes(parley):
    c, _ = connect(parley())
    c.send_text("1")
    expect_closed(c)


@pytest.mark.parametrize("packet", [
    "4abc", "42{}", "42abc[\"x\"]", "4", "49", "451[", "4511-", "42[\"connect\"]", "41/nope,",
    "42/nope,[\"join\",{}]", "44{\"message\":\"x\"}",
    '451-["publish",{"room":"r","data":{"_placeholder":true,"num":1}}]',
])
def test_invalid_packets_close(parley, packet):
    c, _ = connect(parley())
    c.send_text(packet)
    expect_closed(c)


# The common event ["name",{...}] is validated by the command core's one JSON scan of the command built
# from it (docs/socketio.md, "Invalid packets"): invalid JSON anywhere in it still closes, and valid
# but unusual events keep their answers.
@pytest.mark.parametrize("packet", [
    '42["publish",{"room":"a","data":tru}]', '42["join",{"room":"a",}]', '42["join",{"room":"a"}}]',
    '42["join",{"room":"a"},]', '42["join",{"room":"a"} x]', '42["join",{"room":"a"} {}]',
    '421["join",{"room":"a","x":"\\ud800"}]', '42["join",{"room":"a","x":"\\q"}]',
    '42["join",{"room":"a"}]]', '42["join",{"room":"a"],"x":{}}]', '42["join",{"room" "a"}]',
    '42["join",{"room":"a","x":[1,}]', '42["join",{"room":"a","x":01}]',
])
def test_invalid_common_events_close(parley, packet):
    c, _ = connect(parley())
    c.send_text(packet)
    expect_closed(c)


def test_unusual_valid_events_keep_their_answers(parley):
    c, _ = connect(parley())
    # a third element (ignored), white space everywhere, an escaped name
    c.send_text('420["join",{"room":"a"},{"x":1}]')
    assert json.loads(event(c)[3:])[0]["ok"] is True
    c.send_text('421 [ "leave" , { "room" : "a" } ] ')
    assert json.loads(event(c)[3:])[0]["ok"] is True
    c.send_text('422["\\u006aoin",{"room":"b"}]')
    assert json.loads(event(c)[3:])[0]["ok"] is True
    # a duplicate key is the core's error, as for a native frame (invalid JSON there, so the ack id
    # is not known: an error event); the session stays
    c.send_text('423["join",{"room":"a","room":"b"}]')
    t = event(c)
    assert json.loads(t[2:])[0] == "error" and json.loads(t[2:])[1]["code"] == "bad_json", t
    c.send_text('424["join",{}]')
    t = event(c)
    assert json.loads(t[3:])[0]["error"]["code"] == "bad_request", t
    assert ack(c, 5, "leave", {"room": "b"})["ok"] is True


def nested(depth):
    return "[" * depth + "]" * depth


def test_event_depth_bound(parley):
    """The event's array counts: 32 levels in all are accepted, 33 close."""
    c, _ = connect(parley())
    assert ack(c, 0, "join", {"room": "a"})["ok"] is True
    c.send_text('421["publish",{"room":"a","data":%s}]' % nested(30))
    t = event(c)
    while not t.startswith("431"):
        t = event(c)
    assert json.loads(t[3:])[0]["ok"] is True
    c.send_text('422["publish",{"room":"a","data":%s}]' % nested(31))
    expect_closed(c)


@pytest.mark.parametrize("extra,outcome", [(-2, "ok"), (-1, "bad_request"), (0, "bad_request"),
                                           (1, "closed")])
def test_event_keys_bound(parley, extra, outcome):
    """4,096 keys in the event (all levels) pass Socket.IO's check; the command adds type and id."""
    c, _ = connect(parley())
    assert ack(c, 0, "join", {"room": "a"})["ok"] is True
    n = 4096 - 2 + extra  # room and data are two of the event's keys
    data = "{" + ",".join('"k%d":0' % i for i in range(n)) + "}"
    c.send_text('421["publish",{"room":"a","data":%s}]' % data)
    if outcome == "closed":
        expect_closed(c)
        return
    t = event(c)
    while not t.startswith("431"):
        t = event(c)
    r = json.loads(t[3:])[0]
    if outcome == "ok":
        assert r["ok"] is True, r
    else:
        assert r["error"]["code"] == outcome, r


def test_event_before_connect_closes(parley):
    c, _ = open_eio(parley())
    c.send_text('42["join",{"room":"a"}]')
    expect_closed(c)


def test_binary_frame_when_none_awaited_closes(parley):
    c, _ = connect(parley())
    c.send_binary(b"\x01\x02")
    expect_closed(c)


def test_frame_over_max_payload_closes(parley):
    srv = parley("--sio-max-payload", "2000")
    c, _ = connect(srv)
    c.send_text('42["hello",{"name":"' + "x" * 2100 + '"}]')
    m = expect_closed(c)
    assert m.code == 1009


# ---------------------------------------------------------------- events


def test_ack_ids_map_both_ways(parley):
    c, _ = connect(parley())
    # socket.io-client's first ack id is 0; the core's ids start at 1
    c.send_text('420["join",{"room":"a"}]')
    t = event(c)
    assert t.startswith("430["), t
    r = json.loads(t[3:])[0]
    assert r["ok"] is True and r["data"]["room"] == "a"
    big = 2 ** 53 - 2
    c.send_text('42%d["leave",{"room":"a"}]' % big)
    t = event(c)
    assert t == '43%d[{"ok":true,"data":{"room":"a"}}]' % big


def test_event_without_ack_error_event(parley):
    c, _ = connect(parley())
    c.send_text('42["publish",{"room":"nope","data":1}]')
    t = event(c)
    assert json.loads(t[2:]) == ["error", {"code": "not_member", "message": "join the room first"}]
    # success without an ack is silent: the next thing is the ack of a later command
    c.send_text('42["join",{"room":"a"}]')
    assert ack(c, 5, "hello", {"name": "q"})["ok"] is True


def test_event_too_large_for_the_core(parley):
    srv = parley("--max-message-size", "1024")
    c, _ = connect(srv)
    ack(c, 0, "join", {"room": "a"})
    r = ack(c, 1, "publish", {"room": "a", "data": "y" * 2000})
    assert r == {"ok": False, "error": {"code": "too_large",
                                        "message": "the message would exceed the maximum message size"}}


def test_argument_must_not_hold_type_or_id(parley):
    c, _ = connect(parley())
    assert ack(c, 0, "join", {"room": "a", "id": 7})["error"]["code"] == "bad_request"
    assert ack(c, 1, "join", {"room": "a", "type": "publish"})["error"]["code"] == "bad_request"
    # without an ack id too (an error event), and only at the argument's top level
    for arg in ('{"room":"a","id":7}', '{"id":1,"room":"a"}', '{"room":"a","type":"leave"}'):
        c.send_text('42["join",%s]' % arg)
        t = event(c)
        assert json.loads(t[2:]) == ["error", {"code": "bad_request",
                                               "message": "the argument must not hold type or id"}], t
    assert ack(c, 2, "join", {"room": "a", "x": {"id": 1, "type": 2}})["ok"] is True


def test_mixed_room_on_the_wire(parley):
    srv = parley()
    n = srv.client("native")
    n.join("mix")
    c, _ = connect(srv, auth={"name": "sock"})
    assert ack(c, 0, "join", {"room": "mix"})["ok"] is True
    assert ack(c, 1, "publish", {"room": "mix", "data": {"a": 1}})["ok"] is True
    m = n.next_json()
    while m.get("type") != "message":
        m = n.next_json()
    assert m["data"] == {"a": 1} and m["from"] == "sock"
    n.ok("publish", skip=True, room="mix", data="back")
    t = event(c)
    while '"back"' not in t:
        t = event(c)
    name, msg, offset = json.loads(t[2:])
    assert name == "message" and msg["data"] == "back" and msg["from"] == "native"
    assert offset == "%d:mix" % msg["seq"]  # the recovery offset, last
    assert "type" not in msg


# ---------------------------------------------------------------- binary


def placeholder(n):
    return {"_placeholder": True, "num": n}


def test_binary_publish_to_native_and_socketio(parley):
    srv = parley()
    n = srv.client("native")
    n.join("bin")
    a, _ = connect(srv, auth={"name": "a"})
    b, _ = connect(srv, auth={"name": "b"})
    for c in (a, b):
        assert ack(c, 0, "join", {"room": "bin"})["ok"] is True
    a.send_text('451-1["publish",' + json.dumps({"room": "bin", "data": {"f": placeholder(0)}}) + "]")
    a.send_binary(b"\x00\x01\xfe\xff")
    # the native client sees the $base64 wrapper
    m = n.next_json()
    while m.get("type") != "message":
        m = n.next_json()
    assert m["data"] == {"f": {"$base64": base64.b64encode(b"\x00\x01\xfe\xff").decode()}}
    # a Socket.IO client gets a BINARY_EVENT with the bytes as an attachment
    t = event(b)
    assert t.startswith('451-["message",'), t
    assert json.loads(t[len("451-"):])[1]["data"] == {"f": placeholder(0)}
    att = b.recv_message()
    assert att.opcode == 2 and att.payload == b"\x00\x01\xfe\xff"
    # history for Socket.IO: a BINARY_ACK with the attachment
    b.send_text('427["history",{"room":"bin"}]')
    t = event(b)
    while not t.startswith("461-7"):
        t = event(b)
    h = json.loads(t[len("461-7"):])[0]
    assert h["data"]["messages"][0]["data"] == {"f": placeholder(0)}
    assert b.recv_message().payload == b"\x00\x01\xfe\xff"


def test_native_wrapper_reaches_socketio_as_bytes(parley):
    srv = parley()
    n = srv.client("native")
    n.join("w")
    c, _ = connect(srv)
    assert ack(c, 0, "join", {"room": "w"})["ok"] is True
    n.ok("publish", skip=True, room="w", data=[{"$base64": "AQID"}, {"$base64": "AQI"}])
    t = event(c)
    assert t.startswith('451-["message",'), t
    assert json.loads(t[4:])[1]["data"] == [placeholder(0), {"$base64": "AQI"}]
    assert c.recv_message().payload == b"\x01\x02\x03"


# ---------------------------------------------------------------- limits and auth


def test_counts_against_max_connections(parley):
    srv = parley("--max-connections", "2")
    a, _ = connect(srv)
    n = srv.client()
    status, _, _ = http_error(srv, PATH)
    assert status == 503
    with pytest.raises(HandshakeError):
        WSClient(HOST, srv.port, path="/ws")
    a.send_text("1")
    expect_closed(a)
    # the slot is free again, for either kind
    deadline = time.monotonic() + 5
    while True:
        try:
            connect(srv)
            break
        except HandshakeError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    n.close_socket()


def test_counts_against_max_connections_per_ip(parley):
    srv = parley("--max-connections-per-ip", "1")
    connect(srv)
    status, _, _ = http_error(srv, PATH)
    assert status == 429


@pytest.fixture
def secret_file(tmp_path):
    import os
    p = tmp_path / "secret"
    p.write_bytes(SECRET + b"\n")
    os.chmod(p, 0o400)
    return str(p)


def test_token_auth(parley, secret_file):
    srv = parley("--auth", "token", "--auth-secret-file", secret_file)
    c, w = connect(srv, auth={"token": token(claims(sub="tokuser"))})
    assert w["user"] == "tokuser"
    assert ack(c, 0, "join", {"room": "t"})["ok"] is True


def test_token_refused_is_connect_error(parley, secret_file):
    srv = parley("--auth", "token", "--auth-secret-file", secret_file)
    c, _ = open_eio(srv)
    c.send_text('40{"token":"garbage"}')
    t = text(c.recv_message())
    assert t.startswith("44{"), t
    err = json.loads(t[2:])
    assert err["data"] == {"code": "unauthenticated"} and err["message"]
    m = expect_closed(c)
    assert m.code == 4001


def test_no_token_is_connect_error(parley, secret_file):
    srv = parley("--auth", "token", "--auth-secret-file", secret_file)
    c, _ = open_eio(srv)
    c.send_text('40{"name":"mallory"}')
    t = text(c.recv_message())
    assert json.loads(t[2:])["data"] == {"code": "unauthenticated"}


def test_auth_timeout_before_connect(parley, secret_file):
    srv = parley("--auth", "token", "--auth-secret-file", secret_file, "--auth-timeout", "1")
    c, _ = open_eio(srv)
    t = text(c.recv_message(timeout=3))
    assert json.loads(t[2:])["data"] == {"code": "unauthenticated"}
    assert expect_closed(c).code == 4001


# ---------------------------------------------------------------- recovery on the wire


def connect_pid(srv, auth, early=None):
    """CONNECT with auth; returns (client, pid). A recovery's missed messages come before the
    CONNECT answer (socket.io-client buffers them until connected): they go to early."""
    c, _ = open_eio(srv)
    c.send_text("40" + json.dumps(auth))
    while True:
        t = event(c)
        if t.startswith("40"):
            return c, json.loads(t[2:]).get("pid")
        assert t.startswith('42["message"'), t
        if early is not None:
            early.append(json.loads(t[2:]))


def messages_until(c, pred):
    got = []
    while True:
        t = event(c)
        if t.startswith('42["message"'):
            got.append(json.loads(t[2:]))
            if pred(got):
                return got


def test_recovery_wire(parley):
    srv = parley()
    n = srv.client("pub")
    n.join("rw")
    c, pid = connect_pid(srv, {"name": "u1"})
    assert pid and len(pid) == 16
    assert ack(c, 0, "join", {"room": "rw"})["ok"] is True
    seqs = [n.ok("publish", skip=True, room="rw", data=i)["seq"] for i in range(3)]
    got = messages_until(c, lambda g: len(g) == 3)
    assert [m[2] for m in got] == ["%d:rw" % s for s in seqs]  # offsets
    c.close_socket()  # a cut: no 41
    more = [n.ok("publish", skip=True, room="rw", data=i)["seq"] for i in range(3, 5)]
    # the client saw only up to the second message
    early = []
    c2, pid2 = connect_pid(srv, {"name": "u1", "pid": pid, "offset": "%d:rw" % seqs[1]}, early)
    assert pid2 == pid  # recovered
    got = early
    if not got or got[-1][1]["seq"] != more[-1]:
        got += messages_until(c2, lambda g: g[-1][1]["seq"] == more[-1])
    assert [m[1]["seq"] for m in got] == [seqs[2]] + more  # once, in order
    # still a member
    assert ack(c2, 1, "publish", {"room": "rw", "data": "x"})["ok"] is True


@pytest.mark.parametrize("how", ["unknown_offset", "other_user", "bad_offset", "no_such_pid"])
def test_recovery_refused(parley, how):
    srv = parley()
    c, pid = connect_pid(srv, {"name": "u1"})
    assert ack(c, 0, "join", {"room": "rr"})["ok"] is True
    c.close_socket()
    time.sleep(0.2)
    auth = {"name": "u1", "pid": pid, "offset": "999:rr"}
    if how == "other_user":
        auth = {"name": "u2", "pid": pid}
    elif how == "bad_offset":
        auth["offset"] = 12
    elif how == "no_such_pid":
        auth["pid"] = "0123456789abcdef"
    c2, pid2 = connect_pid(srv, auth)
    assert pid2 and pid2 != pid


def test_no_recovery_after_client_disconnect(parley):
    srv = parley()
    c, pid = connect_pid(srv, {"name": "u1"})
    assert ack(c, 0, "join", {"room": "rd"})["ok"] is True
    c.send_text("41")
    expect_closed(c)
    c2, pid2 = connect_pid(srv, {"name": "u1", "pid": pid})
    assert pid2 != pid


def test_recovery_window(parley):
    srv = parley("--sio-recovery-window", "1")
    c, pid = connect_pid(srv, {"name": "u1"})
    c.close_socket()
    time.sleep(1.5)
    c2, pid2 = connect_pid(srv, {"name": "u1", "pid": pid})
    assert pid2 != pid


def test_held_messages_at_send_queue_bytes_over_websocket(parley):
    """A Socket.IO WebSocket session catching up, with --send-queue-bytes set to exactly the native size of
    the 3,000 live messages held behind its replay: they fit the hold; released, their Socket.IO
    renditions are 7 bytes longer each (the event name and offset against "type"), so all at once they
    would not fit the send queue. They go a slice at a time as the socket drains (docs/socketio.md "Long
    replays"): all arrive, once, in order, after the join's ack; no slow-consumer close."""
    # the replay (9 MB) is longer than the kernel's socket buffers and half the send queue: it is still
    # streaming when the live ones arrive
    replay, live, pad = 6000, 3000, 1500
    # seqs replay+1..replay+live have 4 digits, ts 13, the publisher is "pub"; +4: the frame header
    per = len('{"type":"message","room":"wb","seq":6001,"ts":1000000000000,"from":"pub","data":"%s"}'
              % ("x" * pad)) + 4
    srv = parley("--rate-messages", "100000", "--rate-burst", "100000",
                 "--send-queue-messages", "100000", "--send-queue-bytes", str(per * live))
    n = srv.client("pub")
    n.join("wb")
    last = None
    for i in range(1, replay + live + 1):
        if i == replay + 1:
            n.wait_reply(last, skip=True, timeout=60)
            c = srv.raw_client(path=PATH, rcvbuf=4096)
            assert text(c.recv_message())[0] == "0"
            c.send_text('40{"name":"late"}')
            assert text(c.recv_message()).startswith("40{")
            assert text(c.recv_message()).startswith('42["welcome",')
            # it does not read while the live messages arrive
            c.send_text('421["join",{"room":"wb","since":0}]')
            time.sleep(0.2)
        last = n.send_cmd("publish", room="wb", data="x" * pad, echo=False)
    n.wait_reply(last, skip=True, timeout=60)
    seqs, acks = [], []
    while len(seqs) < replay + live:
        t = event(c, timeout=10)
        if t.startswith("431"):
            acks.append(len(seqs))
            continue
        assert t.startswith('42["message",'), t[:80]
        seqs.append(json.loads(t[2:])[1]["seq"])
    assert seqs == list(range(1, replay + live + 1))
    assert acks == [replay]
    assert "slow_consumer" not in srv.log()
    # the frame size parleyd counted for the hold
    obs = srv.client("obs")
    obs.join("wb")
    n.send_cmd("publish", room="wb", data="x" * pad, echo=False)
    m = obs.recv_message(timeout=10)
    assert len(m.payload) + 4 == per, m.payload[:80]


def test_stalled_session_is_cut_off_close_wait_after_its_4008(parley):
    """A Socket.IO session that stops reading is closed as a slow consumer, and, since it never takes
    its close frame, cut off CLOSE_WAIT_S (30 s) later by the keep-alive sweep. The sweep skips the
    sessions that are not closing (Engine.IO pings them): a closing one must be moved where it looks.
    Engine.IO's own heartbeat is set far away, so only the sweep can end it."""
    srv = parley("--send-queue-bytes", "65536", "--send-queue-messages", "100",
                 "--max-message-size", "32768", "--sio-ping-interval", "300000",
                 "--sio-ping-timeout", "300000")
    # an idle session opened first: the stalled one is behind it in the list
    idle, _ = connect(srv)
    stalled = srv.raw_client(path=PATH, rcvbuf=4096, timeout=10)
    o = text(stalled.recv_message())
    assert o[0] == "0"
    stalled.send_text("40")
    assert text(stalled.recv_message()).startswith("40{")
    w = json.loads(text(stalled.recv_message())[2:])[1]
    session = w["session"]
    assert ack(stalled, 0, "join", {"room": "cw"})["ok"] is True
    # stalled reads nothing from here on
    pub = srv.client("pub", timeout=30)
    pub.join("cw")
    pad = "p" * 8000
    t0 = None
    for i in range(600):
        r = pub.wait_reply(pub.send_cmd("publish", room="cw", data={"i": i, "pad": pad}, echo=False))
        assert r["ok"] is True, r
        if "msg=slow_consumer session=%s" % session in srv.log():
            t0 = time.monotonic()
            break
    assert t0 is not None, "the stalled session was never closed as a slow consumer"
    gone = "msg=disconnect session=%s" % session
    while gone not in srv.log():
        assert time.monotonic() - t0 < 45, "stalled session not cut off 45 s after its 4008"
        time.sleep(0.2)
    assert 25 <= time.monotonic() - t0 < 45
    # the idle session was left alone
    assert ack(idle, 1, "join", {"room": "other"})["ok"] is True
