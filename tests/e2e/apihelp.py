"""Helpers for the HTTP API tests (tests/e2e/test_api_*.py): a keys file, a parleyd with the API on,
and a keep-alive JSON client built on http.client (standard library only)."""

import http.client
import json
import os
import re
import socket
import time

KEY1 = "k1-0123456789abcdef0123456789"
KEY2 = "k2-fedcba9876543210fedcba9876"
ADMIN_RE = re.compile(rb"msg=admin_listening\b.*\bport=(\d+)")


def write_keys(path, pairs):
    with open(path, "w") as f:
        f.write("# parley API keys: name key\n")
        for name, key in pairs:
            f.write("%s %s\n" % (name, key))


def start(parley, tmp_path, *flags, keys=(("backend", KEY1),)):
    """A parleyd with api_keys_file holding keys; srv.keys_path is the file, srv.api_port the API's port."""
    path = os.path.join(str(tmp_path), "api.keys")
    write_keys(path, keys)
    srv = parley("--api-keys-file", path, *flags)
    srv.keys_path = path
    srv.api_port = api_port(srv)
    return srv


def api_port(srv):
    """The port /api is served on: the admin listener's when there is one, else the public port."""
    m = ADMIN_RE.search(srv.log().encode())
    return int(m.group(1)) if m else srv.port


class Api:
    """One keep-alive HTTP/1.1 connection to the API."""

    def __init__(self, srv, key=KEY1, timeout=10.0):
        self.srv = srv
        self.key = key
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.api_port, timeout=timeout)

    def request(self, method, path, body=None, key="default", headers=None, raw=None):
        """Returns (status, parsed JSON body, response headers)."""
        h = {}
        if key == "default":
            key = self.key
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None or raw is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        text = r.read()
        try:
            obj = json.loads(text)
        except ValueError:
            obj = text
        return r.status, obj, {k.lower(): v for k, v in r.getheaders()}

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def ok(self, method, path, body=None, **kw):
        st, obj, _ = self.request(method, path, body, **kw)
        assert st == 200 and obj.get("ok") is True, (st, obj)
        return obj["data"]

    def err(self, method, path, body=None, status=400, code=None, **kw):
        st, obj, _ = self.request(method, path, body, **kw)
        assert st == status, (st, obj)
        assert obj["ok"] is False and set(obj["error"]) == {"code", "message"}, obj
        if code:
            assert obj["error"]["code"] == code, obj
        return obj["error"]

    def close(self):
        self.conn.close()


def raw_exchange(port, data, timeout=5.0):
    """Sends raw bytes on a fresh connection; returns (status line, headers, body) of the first response."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        return read_response(s, timeout)
    finally:
        s.close()


def read_response(s, timeout=5.0):
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("no response head")
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return int(lines[0].split()[1]), hdrs, rest[:n]


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)
