"""SIGTERM / SIGINT: every client gets close 1001, the process exits 0."""

import signal
import time

import pytest

from wsclient import HandshakeError, WSClient
from conftest import HOST


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_clients_1001_and_exits_0(parley, sig):
    s = parley()
    idle = s.client()
    a = s.client("alice")
    a.join("r")
    b = s.client("bob")
    b.join("r", presence=True)
    s.send_signal(sig)
    for c in (idle, a, b):
        close, _ = c.recv_close(timeout=10)
        assert close.code == 1001, "want close 1001 on shutdown, got %r" % (close,)
    assert s.stop(sig, timeout=10) == 0


def test_sigterm_with_no_clients_exits_0(parley):
    s = parley()
    assert s.stop(signal.SIGTERM, timeout=10) == 0


def test_sigterm_stops_accepting_connections(parley):
    s = parley()
    a = s.client()
    s.send_signal(signal.SIGTERM)
    a.recv_close(timeout=10)
    assert s.stop(signal.SIGTERM, timeout=10) == 0
    with pytest.raises((OSError, HandshakeError)):
        WSClient(HOST, s.port, timeout=2)


def test_sigterm_after_traffic_exits_0_promptly(parley):
    s = parley()
    a = s.client("alice")
    a.join("r")
    for i in range(50):
        a.ok("publish", room="r", data=i, echo=False)
    t0 = time.monotonic()
    assert s.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - t0 < 10
