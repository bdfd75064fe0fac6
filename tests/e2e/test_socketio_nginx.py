"""Socket.IO through the shipped deploy/nginx.conf: long-polling, then the upgrade to WebSocket."""

import http.client
import json
import threading
import time

from conftest import HOST
from wsclient import WSClient
from nginxhelp import nginx  # noqa: F401

RS = "\x1e"


def req(port, method, query, body=None):
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request(method, "/socket.io/?" + query, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_polling_and_upgrade_through_nginx(parley, nginx):
    s = parley()
    n = nginx("%s:%d" % (HOST, s.port))
    st, b = req(n.port, "GET", "EIO=4&transport=polling")
    assert st == 200, b
    sid = json.loads(b.decode()[1:])["sid"]
    q = "EIO=4&transport=polling&sid=" + sid
    assert req(n.port, "POST", q, '40{"name":"viaproxy"}') == (200, b"ok")
    got = []
    while len(got) < 2:
        st, b = req(n.port, "GET", q)
        assert st == 200
        got += [p for p in b.decode().split(RS) if p not in ("2", "6")]
    assert got[0].startswith("40{") and json.loads(got[1][2:])[1]["user"] == "viaproxy"
    # a GET held through nginx is released by the upgrade's probe
    res = {}
    t = threading.Thread(target=lambda: res.update(r=req(n.port, "GET", q)))
    t.start()
    time.sleep(0.2)
    ws = WSClient(HOST, n.port, path="/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send_text("2probe")
    assert ws.recv_message().payload == b"3probe"
    t.join(5)
    assert res["r"] == (200, b"6")
    ws.send_text("5")
    ws.send_text('420["join",{"room":"px"}]')
    m = ws.recv_message().payload.decode()
    assert m.startswith("430[") and json.loads(m[3:])[0]["ok"] is True
