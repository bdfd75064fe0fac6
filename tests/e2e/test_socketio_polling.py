"""Engine.IO HTTP long-polling at /socket.io/ and the upgrade to WebSocket, on the wire.

Each request is written with http.client (a held GET in a thread), so statuses, bodies, CORS headers and
the upgrade's packets can be checked exactly (docs/socketio.md).
"""

import http.client
import json
import threading
import time

import pytest

from conftest import HOST, WSClient, Close, HandshakeError

RS = "\x1e"
FAST = ["--sio-ping-interval", "300", "--sio-ping-timeout", "200"]


def req(srv, method, query, body=None, headers=None, timeout=5.0):
    c = http.client.HTTPConnection(HOST, srv.port, timeout=timeout)
    try:
        c.request(method, "/socket.io/?" + query, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def handshake(srv, headers=None):
    st, h, b = req(srv, "GET", "EIO=4&transport=polling", headers=headers)
    assert st == 200, (st, b)
    t = b.decode()
    assert t[0] == "0"
    return json.loads(t[1:]), h


def get(srv, sid, timeout=5.0):
    return req(srv, "GET", "EIO=4&transport=polling&sid=" + sid, timeout=timeout)


def post(srv, sid, body, headers=None):
    return req(srv, "POST", "EIO=4&transport=polling&sid=" + sid, body=body, headers=headers)


def packets(body):
    return body.decode().split(RS)


def connected(srv, auth=""):
    o, _ = handshake(srv)
    sid = o["sid"]
    assert post(srv, sid, "40" + auth)[:3:2] == (200, b"ok")
    got = []
    while len(got) < 2:
        st, _, b = get(srv, sid)
        assert st == 200
        got += [p for p in packets(b) if p not in ("2", "6")]
    assert got[0].startswith("40{") and got[1].startswith('42["welcome",'), got
    return sid


class Held(threading.Thread):
    """A GET that the server holds; result is (status, headers, body)."""

    def __init__(self, srv, sid, timeout=5.0):
        super().__init__(daemon=True)
        self.args_ = (srv, sid, timeout)
        self.result = None
        self.start()

    def run(self):
        self.result = get(*self.args_)

    def wait(self, timeout=5.0):
        self.join(timeout)
        assert self.result is not None, "the held GET was not answered"
        return self.result


# ---------------------------------------------------------------- handshake and errors


def test_handshake(parley):
    srv = parley(*FAST)
    o, h = handshake(srv)
    assert set(o) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert o["upgrades"] == ["websocket"]
    assert (o["pingInterval"], o["pingTimeout"], o["maxPayload"]) == (300, 200, 1000000)
    assert h["content-type"].startswith("text/plain")


@pytest.mark.parametrize("method,query,status,code", [
    ("GET", "transport=polling", 400, 5),
    ("GET", "EIO=3&transport=polling", 400, 5),
    ("GET", "EIO=4", 400, 0),
    ("GET", "EIO=4&transport=abc", 400, 0),
    ("POST", "EIO=4&transport=polling", 400, 2),
    ("PUT", "EIO=4&transport=polling", 400, 2),
    ("GET", "EIO=4&transport=polling&sid=nope", 400, 1),
    ("POST", "EIO=4&transport=polling&sid=nope", 400, 1),
    ("GET", "EIO=4&transport=websocket", 400, 3),
])
def test_errors(parley, method, query, status, code):
    srv = parley()
    st, h, b = req(srv, method, query, body="40" if method != "GET" else None)
    assert st == status
    assert h["content-type"] == "application/json"
    assert json.loads(b)["code"] == code


# ---------------------------------------------------------------- CORS


def test_cors_any_origin_when_unset(parley):
    srv = parley()
    _, h = handshake(srv, {"Origin": "https://app.example"})
    assert h["access-control-allow-origin"] == "https://app.example"
    assert h["access-control-allow-credentials"] == "true"


def test_cors_allowlist(parley):
    srv = parley("--origins", "https://good.example")
    _, h = handshake(srv, {"Origin": "https://good.example"})
    assert h["access-control-allow-origin"] == "https://good.example"
    st, h, b = req(srv, "GET", "EIO=4&transport=polling", headers={"Origin": "https://evil.example"})
    assert st == 403 and json.loads(b) == {"code": 4, "message": "Forbidden"}
    assert "access-control-allow-origin" not in h
    # no Origin: not a browser, nothing to check
    handshake(srv)


def test_cors_preflight(parley):
    srv = parley("--origins", "https://good.example")
    st, h, _ = req(srv, "OPTIONS", "EIO=4&transport=polling", headers={"Origin": "https://good.example"})
    assert st == 204
    assert h["access-control-allow-origin"] == "https://good.example"
    assert "POST" in h["access-control-allow-methods"]


# ---------------------------------------------------------------- heartbeat and close


def test_polling_ping_pong(parley):
    srv = parley(*FAST)
    o, _ = handshake(srv)
    for _ in range(3):
        st, _, b = get(srv, o["sid"])
        assert (st, b) == (200, b"2")
        assert post(srv, o["sid"], "3")[::2] == (200, b"ok")


def test_polling_ping_timeout(parley):
    srv = parley(*FAST)
    o, _ = handshake(srv)
    time.sleep(0.8)
    st, _, b = get(srv, o["sid"])
    # the session is gone: either the close packet it was owed, or unknown sid
    assert (st == 200 and b.endswith(b"1")) or (st == 400 and json.loads(b)["code"] == 1)
    st, _, b = get(srv, o["sid"])
    assert st == 400 and json.loads(b)["code"] == 1


def test_client_close_releases_held_get(parley):
    srv = parley()
    sid = connected(srv)
    held = Held(srv, sid)
    time.sleep(0.2)
    assert post(srv, sid, "1")[::2] == (200, b"ok")
    st, _, b = held.wait()
    assert (st, b) == (200, b"6")
    st, _, b = get(srv, sid)
    assert st == 400 and json.loads(b)["code"] == 1


def test_overlapping_gets_close_the_session(parley):
    srv = parley()
    sid = connected(srv)
    held = Held(srv, sid)
    time.sleep(0.2)
    st, _, b = get(srv, sid)
    assert st == 400 and json.loads(b)["code"] == 3
    st, _, b = held.wait()
    assert st == 200 and b.endswith(b"1")


# ---------------------------------------------------------------- bounds


def test_post_over_max_payload_is_413(parley):
    srv = parley("--sio-max-payload", "2000")
    sid = connected(srv)
    st, _, b = post(srv, sid, "4" + "x" * 3000)
    assert st == 413 and json.loads(b)["code"] == 3
    st, _, b = get(srv, sid)
    assert (st == 200 and b.endswith(b"1")) or st == 400


def test_too_many_packets_in_a_post(parley):
    srv = parley()
    sid = connected(srv)
    st, _, b = post(srv, sid, RS.join(["3"] * 1025))
    assert st == 400 and json.loads(b)["code"] == 3


def test_bad_base64_packet(parley):
    srv = parley()
    sid = connected(srv)
    st, _, b = post(srv, sid, "b!!!")
    assert st == 400 and json.loads(b)["code"] == 3


def test_counts_against_max_connections(parley):
    srv = parley("--max-connections", "1")
    handshake(srv)
    st, _, b = req(srv, "GET", "EIO=4&transport=polling")
    assert st == 503
    with pytest.raises(HandshakeError):
        WSClient(HOST, srv.port, path="/ws")


# ---------------------------------------------------------------- events over polling


def test_events_and_acks_over_polling(parley):
    srv = parley()
    sid = connected(srv, '{"name":"pol"}')
    assert post(srv, sid, '420["join",{"room":"p"}]' + RS + '421["publish",{"room":"p","data":7}]')[0] == 200
    got = []
    while not any(p.startswith("431") for p in got):
        st, _, b = get(srv, sid)
        assert st == 200
        got += packets(b)
    acks = [p for p in got if p.startswith("43")]
    assert json.loads(acks[0][3:])[0]["ok"] is True
    msg = [p for p in got if p.startswith('42["message"')][0]
    assert json.loads(msg[2:])[1]["data"] == 7
    # the message precedes the publish's ack, as on the native protocol
    assert got.index(msg) < got.index(acks[1])


def test_binary_attachment_over_polling(parley):
    srv = parley()
    sid = connected(srv)
    n = srv.client("nat")
    n.join("pb")
    body = '420["join",{"room":"pb"}]' + RS + \
        '451-1["publish",{"room":"pb","data":{"_placeholder":true,"num":0}}]' + RS + "bAQID"
    assert post(srv, sid, body)[0] == 200
    m = n.next_json()
    while m.get("type") != "message":
        m = n.next_json()
    assert m["data"] == {"$base64": "AQID"}
    got = []
    while "bAQID" not in got:
        st, _, b = get(srv, sid)
        got += packets(b)
    i = got.index("bAQID")
    assert got[i - 1].startswith('451-["message",')


# ---------------------------------------------------------------- the upgrade


def test_upgrade(parley):
    srv = parley()
    sid = connected(srv)
    held = Held(srv, sid)
    time.sleep(0.1)
    ws = WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send_text("2probe")
    assert ws.recv_message().payload == b"3probe"
    st, _, b = held.wait()
    assert (st, b) == (200, b"6")
    ws.send_text("5")
    ws.send_text('421["join",{"room":"u"}]')
    m = ws.recv_message()
    while m.payload.startswith(b"2"):
        ws.send_text("3")
        m = ws.recv_message()
    assert m.payload.startswith(b"431[")
    # polling with the sid is over; a second WebSocket is refused
    st, _, b = get(srv, sid)
    assert st == 400 and json.loads(b)["code"] == 3
    with pytest.raises(HandshakeError) as e:
        WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    assert e.value.status == 400


def test_failed_probe_keeps_polling(parley):
    srv = parley()
    sid = connected(srv)
    ws = WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send_text("garbage")
    m = ws.recv_message()
    assert isinstance(m, Close)
    assert post(srv, sid, '420["hello",{"name":"still"}]')[0] == 200
    got = []
    while not any(p.startswith("430") for p in got):
        st, _, b = get(srv, sid)
        assert st == 200
        got += packets(b)


def test_keep_alive_connection_serves_other_paths_after(parley):
    """One HTTP/1.1 connection: a polling handshake, then /healthz, then a poll again."""
    srv = parley()
    c = http.client.HTTPConnection(HOST, srv.port, timeout=5)
    try:
        c.request("GET", "/socket.io/?EIO=4&transport=polling")
        r = c.getresponse()
        sid = json.loads(r.read().decode()[1:])["sid"]
        c.request("GET", "/healthz")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"ok\n")
        c.request("POST", "/socket.io/?EIO=4&transport=polling&sid=" + sid, body="40")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"ok")
        c.request("GET", "/socket.io/?EIO=4&transport=polling&sid=" + sid)
        r = c.getresponse()
        assert r.status == 200 and r.read().startswith(b"40{")
    finally:
        c.close()


def test_metrics(parley):
    srv = parley()
    sid = connected(srv)
    ws = WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send_text("2probe")
    assert ws.recv_message().payload == b"3probe"
    ws.send_text("5")
    handshake(srv)  # a second session, still polling
    req(srv, "GET", "EIO=9&transport=polling")
    deadline = time.monotonic() + 5
    while True:
        st, _, body = srv.metrics_get()
        text = body.decode()
        if 'parley_sio_upgrades_total 1' in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert st == 200
    assert 'parley_sio_sessions{transport="websocket"} 1' in text
    assert 'parley_sio_sessions{transport="polling"} 1' in text
    assert 'parley_sio_sessions_total{transport="polling"} 2' in text
    assert 'parley_sio_upgrades_total 1' in text
    assert "parley_connections 2" in text  # sessions count as connections
    ws.send_text("1")
    deadline = time.monotonic() + 5
    while 'parley_sio_closes_total{reason="transport close"} 1' not in text:
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
        text = srv.metrics_get()[2].decode()


def test_sio_max_sessions(parley):
    srv = parley("--sio-max-sessions", "2")
    handshake(srv)
    ws = WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket")
    assert ws.recv_message().payload.startswith(b"0{")
    st, _, b = req(srv, "GET", "EIO=4&transport=polling")
    assert st == 503 and json.loads(b)["code"] == 3
    with pytest.raises(HandshakeError) as e:
        WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket")
    assert e.value.status == 503
    # native clients are not Socket.IO sessions
    srv.client("native")


# ---------------------------------------------------------------- a replay longer than the queue
#
# The Engine.IO queue holds a replay's slice (512 packets, 2 MiB) plus the send queue limits (1000 live
# messages, 1 MiB by default, at least 512 packets / 2 MiB): 1,512 packets by default, 1,024 before. A
# join with since whose replay is longer is fed to the polling client as it drains it: each GET takes
# what is queued, the catch-up refills the slice, and the live messages published meanwhile are held
# behind the replay (docs/socketio.md).

QUEUE_MAX = 1024  # the Engine.IO default, two slices
NO_RATE = ["--rate-messages", "100000", "--rate-burst", "100000"]


def publish_many(n, room, first, count):
    """Publishes data first..first+count-1 into room, pipelined; returns once all are stored."""
    last = None
    for i in range(first, first + count):
        last = n.send_cmd("publish", room=room, data=i, echo=False)
    n.wait_reply(last, skip=True, timeout=30)
    n.backlog.clear()


def drain(srv, sid, done, got, bodies):
    """GETs until done(got); message packets and the rest go to got in order, one list per GET in
    bodies. Pings are answered."""
    for _ in range(1000):
        if done(got):
            return
        st, _, b = get(srv, sid)
        assert st == 200, b
        ps = packets(b)
        assert "1" not in ps, "the session was closed: %r" % ps[-3:]
        if "2" in ps:
            post(srv, sid, "3")
        ps = [p for p in ps if p not in ("2", "6")]
        bodies.append(ps)
        got += ps
    raise AssertionError("too many GETs")


def msg_seq(p):
    """The seq of a `message` event packet, else None."""
    if not p.startswith('42["message",'):
        return None
    return json.loads(p[2:])[1]["seq"]


@pytest.mark.parametrize("total", [QUEUE_MAX - 1, QUEUE_MAX, QUEUE_MAX + 1, 3000])
def test_since_replay_longer_than_the_queue(parley, total):
    srv = parley(*NO_RATE)
    n = srv.client("pub")
    n.join("big")
    publish_many(n, "big", 1, total)
    sid = connected(srv, '{"name":"late"}')
    assert post(srv, sid, '420["join",{"room":"big","since":0}]')[:3:2] == (200, b"ok")
    got, bodies = [], []
    drain(srv, sid, lambda g: any(p.startswith("430") for p in g), got, bodies)
    seqs = [s for s in map(msg_seq, got) if s is not None]
    assert seqs == list(range(1, total + 1))
    ack = [p for p in got if p.startswith("430")]
    assert len(ack) == 1 and got[-1] == ack[0]
    assert json.loads(ack[0][3:])[0]["data"]["recovered"] is True
    # streamed: no GET carried more than half the queue's bound (plus the ack)
    assert max(len(b) for b in bodies) <= QUEUE_MAX // 2 + 1, [len(b) for b in bodies]
    if total > QUEUE_MAX:
        assert len(bodies) >= 3
    # still a working session
    assert post(srv, sid, '421["publish",{"room":"big","data":"after"}]')[0] == 200
    drain(srv, sid, lambda g: any(p.startswith("431") for p in g), got, bodies)
    assert [s for s in map(msg_seq, got) if s is not None][-1] == total + 1


def test_live_messages_wait_behind_a_polling_replay(parley):
    """700 messages published while the replay of 3000 streams: held, then delivered after the join's
    ack, in order, none twice; let go a half queue at a time, so 700 held plus the replay's half queue
    (more than 1024 together) do not close the session."""
    srv = parley(*NO_RATE)
    n = srv.client("pub")
    n.join("mix")
    publish_many(n, "mix", 1, 3000)
    sid = connected(srv, '{"name":"late"}')
    assert post(srv, sid, '420["join",{"room":"mix","since":0}]')[0] == 200
    got, bodies = [], []
    drain(srv, sid, lambda g: len(g) > 0, got, bodies)  # the replay is under way
    publish_many(n, "mix", 3001, 700)
    drain(srv, sid, lambda g: sum(1 for p in g if msg_seq(p)) >= 3700, got, bodies)
    seqs = [s for s in map(msg_seq, got) if s is not None]
    assert seqs == list(range(1, 3701))
    ack = [i for i, p in enumerate(got) if p.startswith("430")]
    assert len(ack) == 1
    assert msg_seq(got[ack[0] - 1]) == 3000 and msg_seq(got[ack[0] + 1]) == 3001
    assert json.loads(got[ack[0]][3:])[0]["data"]["recovered"] is True


def test_polling_replay_upgraded_midway(parley):
    """The client upgrades to WebSocket while the replay streams: the rest of it follows on the
    WebSocket, in order."""
    srv = parley(*NO_RATE)
    n = srv.client("pub")
    n.join("up")
    publish_many(n, "up", 1, 3000)
    sid = connected(srv)
    assert post(srv, sid, '420["join",{"room":"up","since":0}]')[0] == 200
    got, bodies = [], []
    drain(srv, sid, lambda g: len(g) > 0, got, bodies)
    ws = WSClient(HOST, srv.port, path="/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send_text("2probe")
    assert ws.recv_message().payload == b"3probe"
    # what polling still has queued, then the client pauses polling and sends 5
    st, _, b = get(srv, sid)
    assert st == 200
    got += [p for p in packets(b) if p not in ("2", "6")]
    ws.send_text("5")
    while not any(p.startswith("430") for p in got):
        m = ws.recv_message(timeout=10)
        if isinstance(m, Close):
            raise AssertionError("closed: %r after %d" % (m, len(got)))
        p = m.payload.decode()
        if p == "2":
            ws.send_text("3")
            continue
        assert p[0] == "4", p
        got.append(p)
    seqs = [s for s in map(msg_seq, got) if s is not None]
    assert seqs == list(range(1, 3001)), (len(seqs), seqs[:3], seqs[-3:])


# ---------------------------------------------------------------- held messages at the send queue's limits
#
# Live messages held behind a polling replay are bounded by send_queue_messages / send_queue_bytes, which an
# operator may set above the Engine.IO queue's default bounds (1024 packets, 4 MiB). They are let go into the
# queue in slices as the client polls (docs/socketio.md "Long replays"), so a client that polls gets all of
# them; one more than the limit is the slow-consumer close, as on a WebSocket.

REPLAY = 2000  # longer than half the queue: the replay is still streaming while the live ones arrive


def held_behind_replay(srv, room, live, data=lambda i: i):
    """A polling client joins room with since=0 (REPLAY stored messages) and takes one GET; then `live`
    messages are published (data(i) for seq i) while it does not poll. Returns (sid, n, got, bodies)."""
    n = srv.client("pub")
    n.join(room)
    last = None
    for i in range(1, REPLAY + 1):
        last = n.send_cmd("publish", room=room, data=data(i), echo=False)
    n.wait_reply(last, skip=True, timeout=60)
    n.backlog.clear()
    sid = connected(srv, '{"name":"late"}')
    assert post(srv, sid, '420["join",{"room":"%s","since":0}]' % room)[0] == 200
    got, bodies = [], []
    drain(srv, sid, lambda g: len(g) > 0, got, bodies)  # the replay is under way
    assert not any(p.startswith("430") for p in got)
    for i in range(REPLAY + 1, REPLAY + live + 1):
        last = n.send_cmd("publish", room=room, data=data(i), echo=False)
    n.wait_reply(last, skip=True, timeout=60)
    n.backlog.clear()
    return sid, n, got, bodies


def check_all_once_in_order(got, total):
    seqs = [s for s in map(msg_seq, got) if s is not None]
    assert seqs == list(range(1, total + 1)), (len(seqs), seqs[:3], seqs[-3:])
    ack = [i for i, p in enumerate(got) if p.startswith("430")]
    assert len(ack) == 1
    assert msg_seq(got[ack[0] - 1]) == REPLAY and msg_seq(got[ack[0] + 1]) == REPLAY + 1


def drain_until_closed(srv, sid, got):
    """GETs until the close packet "1" (or the session is gone: 400); returns the packets before it."""
    for _ in range(1000):
        st, _, b = get(srv, sid)
        if st != 200:
            return
        ps = packets(b)
        if "2" in ps:
            post(srv, sid, "3")
        got += [p for p in ps if p not in ("2", "6", "1")]
        if "1" in ps:
            return
    raise AssertionError("the session was not closed")


@pytest.mark.parametrize("live", [1500, 3000])
def test_held_messages_up_to_send_queue_messages(parley, live):
    """--send-queue-messages 3000: 1,500 and 3,000 (the limit) live messages held behind a polling replay
    all arrive, once, in order, after the join's ack; the session stays up."""
    srv = parley(*NO_RATE, "--send-queue-messages", "3000")
    sid, n, got, bodies = held_behind_replay(srv, "hq%d" % live, live)
    drain(srv, sid, lambda g: sum(1 for p in g if msg_seq(p)) >= REPLAY + live, got, bodies)
    check_all_once_in_order(got, REPLAY + live)
    # no GET carried more than a slice (512 packets: the queue is 512 + send_queue_messages), plus the ack
    assert max(len(b) for b in bodies) <= QUEUE_MAX // 2 + 1, [len(b) for b in bodies]
    assert "slow_consumer" not in srv.log()
    # still a working session, live messages go straight out again
    assert post(srv, sid, '421["publish",{"room":"hq%d","data":"after"}]' % live)[0] == 200
    drain(srv, sid, lambda g: any(p.startswith("431") for p in g), got, bodies)
    assert [s for s in map(msg_seq, got) if s is not None][-1] == REPLAY + live + 1


def test_held_messages_one_past_send_queue_messages(parley):
    """3,001 held with --send-queue-messages 3000: the slow-consumer close (a client that does not poll
    while it catches up falls behind the live stream). What it got before is a prefix, in order."""
    srv = parley(*NO_RATE, "--send-queue-messages", "3000")
    sid, n, got, bodies = held_behind_replay(srv, "hq3001", 3001)
    drain_until_closed(srv, sid, got)
    seqs = [s for s in map(msg_seq, got) if s is not None]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) < REPLAY + 3001
    assert "slow_consumer" in srv.log()
    # the publisher is unaffected
    assert n.ok("publish", room="hq3001", data="still", echo=False)["seq"] == REPLAY + 3002


# Held bytes count the native frame: {"type":"message",...} plus its 4-byte WebSocket header (126..65535).
PAD = 1500


def pad_data(i):
    return "x" * PAD


def native_len(room, seq, ts, name):
    body = '{"type":"message","room":"%s","seq":%d,"ts":%d,"from":"%s","data":"%s"}' % (
        room, seq, ts, name, "x" * PAD)
    return len(body) + 4


@pytest.mark.parametrize("extra", [0, 1])
def test_held_messages_at_send_queue_bytes(parley, extra):
    """--send-queue-bytes set to exactly the native size of 3,000 held messages (over 4 MiB, the polling
    queue's default bound): all arrive; one byte less (one message past the limit): the slow-consumer
    close."""
    live = 3000
    # seqs REPLAY+1..REPLAY+live have 4 digits, ts 13 digits, the publisher is "pub"
    per = native_len("hb", 1000, 1000000000000, "pub")
    limit = per * live - extra
    assert limit > 4 << 20
    srv = parley(*NO_RATE, "--send-queue-messages", "100000", "--send-queue-bytes", str(limit))
    sid, n, got, bodies = held_behind_replay(srv, "hb", live, pad_data)
    if extra == 0:
        drain(srv, sid, lambda g: sum(1 for p in g if msg_seq(p)) >= REPLAY + live, got, bodies)
        check_all_once_in_order(got, REPLAY + live)
        assert "slow_consumer" not in srv.log()
    else:
        drain_until_closed(srv, sid, got)
        seqs = [s for s in map(msg_seq, got) if s is not None]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < REPLAY + live
        assert "slow_consumer" in srv.log()
    # the formula is the size parleyd counts: a native member's frame of a message like the held ones
    obs = srv.client("obs")
    obs.join("hb")
    n.send_cmd("publish", room="hb", data=pad_data(0), echo=False)
    m = obs.recv_message(timeout=10)
    f = json.loads(m.payload)
    assert f["type"] == "message" and 1000 <= f["seq"] <= 9999 and f["from"] == "pub", f
    assert len(m.payload) + 4 == per == native_len("hb", f["seq"], f["ts"], f["from"])
