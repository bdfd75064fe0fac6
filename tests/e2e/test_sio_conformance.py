"""The Socket.IO protocol test suite's cases (socket.io-protocol, test-suite/test-suite.js: handshake,
heartbeat, close, upgrade, connect, disconnect, message, invalid formats), written anew against
parley-sio-conformance: parleyd's own Engine.IO/Socket.IO edge set up as that suite's server.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import HOST, WSClient, Close, HandshakeError

RS = "\x1e"


@pytest.fixture
def conf():
    exe = os.environ.get("PARLEY_SIO_CONFORMANCE")
    if not exe:
        pytest.skip("PARLEY_SIO_CONFORMANCE not set")
    d = tempfile.mkdtemp(prefix="parley-conf-")
    log = open(os.path.join(d, "log"), "w+b")
    p = subprocess.Popen([exe, "--port", "0", "--host", HOST, "--data-dir", d], stderr=log)
    deadline = time.monotonic() + 10
    port = None
    while port is None:
        assert time.monotonic() < deadline, "parley-sio-conformance did not start"
        log.seek(0)
        m = re.search(rb"msg=listening\b.*\bport=(\d+)", log.read())
        if m:
            port = int(m.group(1))
        else:
            time.sleep(0.02)

    class Srv:
        pass
    srv = Srv()
    srv.port = port
    yield srv
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 0
    log.seek(0)
    out = log.read()
    assert b"AddressSanitizer" not in out and b"runtime error" not in out, out.decode(errors="replace")


def req(srv, method, query, body=None):
    c = http.client.HTTPConnection(HOST, srv.port, timeout=5)
    try:
        c.request(method, "/socket.io/?" + query, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def poll_open(srv):
    st, b = req(srv, "GET", "EIO=4&transport=polling")
    assert st == 200
    return json.loads(b.decode()[1:])


def ws_open(srv, sid=None):
    path = "/socket.io/?EIO=4&transport=websocket" + ("&sid=" + sid if sid else "")
    ws = WSClient(HOST, srv.port, path=path)
    if not sid:
        o = ws.recv_message().payload.decode()
        assert o[0] == "0"
    return ws


def recv(ws):
    """The next message that is not a ping (pings answered)."""
    while True:
        m = ws.recv_message()
        if isinstance(m, Close):
            return m
        if m.opcode == 1 and m.payload == b"2":
            ws.send_text("3")
            continue
        return m.payload.decode() if m.opcode == 1 else m.payload


def sio_connect(srv, nsp=""):
    ws = ws_open(srv)
    ws.send_text("40" + (nsp + "," if nsp else ""))
    assert re.fullmatch(r'40%s\{"sid":"[^"]+"\}' % re.escape(nsp + "," if nsp else ""), recv(ws))
    assert recv(ws) == '42%s["auth",{}]' % (nsp + "," if nsp else "")
    return ws


def closed(ws):
    m = ws.recv_message(timeout=3)
    while not isinstance(m, Close):
        m = ws.recv_message(timeout=3)
    return True


# ---- handshake


def test_handshake_polling(conf):
    o = poll_open(conf)
    assert o["upgrades"] == ["websocket"] and len(o["sid"]) == 20
    assert (o["pingInterval"], o["pingTimeout"], o["maxPayload"]) == (300, 200, 1000000)


def test_handshake_websocket(conf):
    ws = WSClient(HOST, conf.port, path="/socket.io/?EIO=4&transport=websocket")
    o = json.loads(ws.recv_message().payload.decode()[1:])
    assert o["upgrades"] == [] and (o["pingInterval"], o["pingTimeout"]) == (300, 200)


@pytest.mark.parametrize("query", ["transport=polling", "EIO=abc&transport=polling"])
def test_invalid_eio(conf, query):
    st, b = req(conf, "GET", query)
    assert st == 400 and json.loads(b) == {"code": 5, "message": "Unsupported protocol version"}


@pytest.mark.parametrize("query", ["EIO=4", "EIO=4&transport=abc"])
def test_invalid_transport(conf, query):
    st, b = req(conf, "GET", query)
    assert st == 400 and json.loads(b) == {"code": 0, "message": "Transport unknown"}


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_invalid_request_method(conf, method):
    st, b = req(conf, method, "EIO=4&transport=polling", body="")
    assert st == 400 and json.loads(b) == {"code": 2, "message": "Bad handshake method"}


@pytest.mark.parametrize("query", ["transport=websocket", "EIO=abc&transport=websocket",
                                   "EIO=4", "EIO=4&transport=abc"])
def test_invalid_websocket_handshake(conf, query):
    with pytest.raises(HandshakeError) as e:
        WSClient(HOST, conf.port, path="/socket.io/?" + query)
    assert e.value.status == 400


# ---- heartbeat


def test_heartbeat_polling(conf):
    sid = poll_open(conf)["sid"]
    for _ in range(3):
        st, b = req(conf, "GET", "EIO=4&transport=polling&sid=" + sid)
        assert (st, b) == (200, b"2")
        assert req(conf, "POST", "EIO=4&transport=polling&sid=" + sid, body="3") == (200, b"ok")


def test_heartbeat_polling_timeout(conf):
    sid = poll_open(conf)["sid"]
    time.sleep(0.7)
    st, b = req(conf, "GET", "EIO=4&transport=polling&sid=" + sid)
    assert st == 400 or b.endswith(b"1")


def test_heartbeat_websocket(conf):
    ws = ws_open(conf)
    for _ in range(3):
        assert ws.recv_message(timeout=2).payload == b"2"
        ws.send_text("3")


def test_heartbeat_websocket_timeout(conf):
    ws = ws_open(conf)
    assert ws.recv_message(timeout=2).payload == b"2"
    assert closed(ws)


# ---- close


def test_close_polling(conf):
    sid = poll_open(conf)["sid"]
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.update(r=req(conf, "GET", "EIO=4&transport=polling&sid=" + sid)))
    t.start()
    time.sleep(0.05)
    assert req(conf, "POST", "EIO=4&transport=polling&sid=" + sid, body="1") == (200, b"ok")
    t.join(5)
    assert res["r"] == (200, b"6")
    st, _ = req(conf, "GET", "EIO=4&transport=polling&sid=" + sid)
    assert st == 400


def test_close_websocket(conf):
    ws = ws_open(conf)
    ws.send_text("1")
    assert closed(ws)


# ---- upgrade


def test_upgrade(conf):
    sid = poll_open(conf)["sid"]
    ws = ws_open(conf, sid)
    ws.send_text("2probe")
    assert ws.recv_message().payload == b"3probe"
    ws.send_text("5")
    st, b = req(conf, "GET", "EIO=4&transport=polling&sid=" + sid)
    assert st == 400
    with pytest.raises(HandshakeError):
        ws_open(conf, sid)


# ---- connect


def test_connect_main(conf):
    sio_connect(conf)


def test_connect_main_with_payload(conf):
    ws = ws_open(conf)
    ws.send_text('40{"token":"123"}')
    assert recv(ws).startswith('40{"sid":')
    assert recv(ws) == '42["auth",{"token":"123"}]'


def test_connect_custom(conf):
    sio_connect(conf, "/custom")


def test_connect_custom_with_payload(conf):
    ws = ws_open(conf)
    ws.send_text('40/custom,{"token":"abc"}')
    assert recv(ws).startswith('40/custom,{"sid":')
    assert recv(ws) == '42/custom,["auth",{"token":"abc"}]'


def test_connect_unknown_namespace(conf):
    ws = ws_open(conf)
    ws.send_text("40/random")
    assert recv(ws) == '44/random,{"message":"Invalid namespace"}'


def test_connect_invalid_handshake(conf):
    ws = ws_open(conf)
    ws.send_text("4abc")
    assert closed(ws)


def test_connect_timeout(conf):
    ws = ws_open(conf)
    t0 = time.monotonic()
    assert isinstance(recv(ws), Close)  # pings answered: it is the missing CONNECT that closes
    assert 0.9 <= time.monotonic() - t0 < 3


# ---- disconnect


def test_disconnect(conf):
    ws = sio_connect(conf)
    ws.send_text("41")
    assert closed(ws)


def test_disconnect_custom_then_main_still_works(conf):
    ws = sio_connect(conf)
    ws.send_text("40/custom,")
    assert recv(ws).startswith("40/custom,")
    assert recv(ws) == '42/custom,["auth",{}]'
    ws.send_text("41/custom,")
    ws.send_text('42["message","message to main namespace"]')
    assert recv(ws) == '42["message-back","message to main namespace"]'


# ---- message


def test_message_plain(conf):
    ws = sio_connect(conf)
    ws.send_text('42["message",1,"2",{"3":[true]}]')
    assert recv(ws) == '42["message-back",1,"2",{"3":[true]}]'


def test_message_binary(conf):
    ws = sio_connect(conf)
    ws.send_text('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    ws.send_binary(b"\x01\x02\x03")
    ws.send_binary(b"\x04\x05\x06")
    assert recv(ws) == '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert recv(ws) == b"\x01\x02\x03"
    assert recv(ws) == b"\x04\x05\x06"


def test_message_with_ack(conf):
    ws = sio_connect(conf)
    ws.send_text('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert recv(ws) == '43456[1,"2",{"3":[false]}]'


def test_message_binary_with_ack(conf):
    ws = sio_connect(conf)
    ws.send_text('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    ws.send_binary(b"\x01\x02\x03")
    ws.send_binary(b"\x04\x05\x06")
    assert recv(ws) == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert recv(ws) == b"\x01\x02\x03"
    assert recv(ws) == b"\x04\x05\x06"


def test_message_over_polling(conf):
    sid = poll_open(conf)["sid"]
    assert req(conf, "POST", "EIO=4&transport=polling&sid=" + sid,
               body="40" + RS + '42["message","hi"]')[0] == 200
    got = []
    while '42["message-back","hi"]' not in got:
        st, b = req(conf, "GET", "EIO=4&transport=polling&sid=" + sid)
        assert st == 200
        got += b.decode().split(RS)
    assert got[0].startswith('40{"sid":') and got[1] == '42["auth",{}]'


# ---- invalid formats


@pytest.mark.parametrize("packet", ["4abc", "42{}", '42abc["message"]'])
def test_invalid_format_closes(conf, packet):
    ws = sio_connect(conf)
    ws.send_text(packet)
    assert closed(ws)
