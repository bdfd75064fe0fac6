"""WebSocket keepalive: idle connections get pings; no pong means hang-up."""

import socket
import time

from wsclient import OP_PING

FAST = ("--ping-interval", "1", "--ping-timeout", "3")


def test_idle_connection_gets_a_websocket_ping(parley):
    s = parley(*FAST)
    c = s.client()
    deadline = time.monotonic() + 6
    while True:
        fin, op, payload = c.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        if op == OP_PING:
            break
        assert op is not None, "connection dropped before any ping"


def test_connection_that_never_answers_pings_is_hung_up(parley):
    s = parley(*FAST)
    c = s.client()
    # Read raw frames without ever sending a pong.
    deadline = time.monotonic() + 15
    while True:
        try:
            fin, op, payload = c.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        except socket.timeout:
            raise AssertionError("silent connection still open after 15 s (ping-timeout 3)")
        if op is None or op == 0x8:
            break


def test_connection_that_answers_pings_stays_up(parley):
    s = parley(*FAST)
    c = s.client()
    end = time.monotonic() + 6  # twice the ping timeout
    while time.monotonic() < end:
        try:
            m = c.recv_message(timeout=max(0.01, end - time.monotonic()))  # answers pings
        except socket.timeout:
            break
        raise AssertionError("unexpected frame while idle: %r" % (m,))
    assert c.request("ping")["ok"] is True


def test_ping_timeout_not_above_ping_interval_is_rejected():
    import subprocess
    from conftest import parleyd_path
    p = subprocess.run([parleyd_path(), "--port", "0", "--admin-listen", "off", "--ping-interval", "5", "--ping-timeout", "5",
                        "--data-dir", "/nonexistent-parley-e2e"], capture_output=True, timeout=10)
    assert p.returncode != 0


def test_data_frames_count_as_liveness_without_pongs(parley):
    # protocol.md §15: any frame from the client counts as hearing from it. A client that never answers
    # WebSocket pings but sends a command every 0.5 s stays up well past the ping timeout. Once it stops
    # sending, it gets pinged and hung up.
    s = parley(*FAST)
    c = s.client()
    start = time.monotonic()
    next_send = 0.0
    while time.monotonic() - start < 7:  # more than twice the 3 s timeout
        if time.monotonic() >= next_send:
            c.send_json({"type": "ping"})  # no id: no reply, only liveness
            next_send = time.monotonic() + 0.5
        try:
            fin, op, payload = c.recv_frame(timeout=0.1)
        except socket.timeout:
            continue
        assert op not in (None, 0x8), "hung up after %.1f s while sending data" % (time.monotonic() - start)
    quiet = time.monotonic()
    pinged = False
    while True:
        try:
            fin, op, payload = c.recv_frame(timeout=15)
        except socket.timeout:
            raise AssertionError("quiet connection still open 15 s after it stopped sending")
        if op == OP_PING:
            pinged = True
        if op is None or op == 0x8:
            break
    assert pinged and time.monotonic() - quiet >= 2.5, "hung up before the ping timeout"


def test_native_connections_among_socketio_sessions_are_still_swept(parley):
    """Socket.IO sessions sit after the native connections in the server's list, and the keep-alive
    sweep stops at the first one (Engine.IO pings them): native connections opened before, between and
    after sessions must all still get their pings, and a silent one its hang-up."""
    s = parley(*FAST, "--sio-ping-interval", "60000", "--sio-ping-timeout", "60000")
    path = "/socket.io/?EIO=4&transport=websocket"
    order = []
    for i in range(6):
        if i % 2:
            order.append(("sio", s.raw_client(path=path)))
        else:
            order.append(("native", s.client()))
    natives = [c for kind, c in order if kind == "native"]
    # each native connection gets a WebSocket ping; the first never answers it
    silent = natives[0]
    for c in natives:
        deadline = time.monotonic() + 6
        while True:
            fin, op, payload = c.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
            assert op is not None, "native connection dropped before any ping"
            if op == OP_PING:
                break
    deadline = time.monotonic() + 15
    while True:
        try:
            fin, op, payload = silent.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        except socket.timeout:
            raise AssertionError("silent native connection still open after 15 s (ping-timeout 3)")
        if op is None or op == 0x8:
            break
    # the sessions were left alone by that sweep: still open (their own pings are a minute away)
    for kind, c in order:
        if kind == "sio":
            c.send_text("40")
            m = c.recv_message(timeout=5)
            while m.payload.decode().startswith("0"):  # the Engine.IO open packet
                m = c.recv_message(timeout=5)
            assert m.payload.decode().startswith("40{"), m
