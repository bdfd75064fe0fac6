"""HTTP API edge: off without keys, bearer auth and key rotation, routing errors, body decoding errors,
body size limit (at it, one past it, lying Content-Length, chunked), keep-alive, slow clients."""

import json
import signal
import socket
import threading
import time

import apihelp
from apihelp import KEY1, KEY2, Api


def test_api_off_without_keys(srv):
    # No api_keys_file: the API is off (404), never open, whatever key is shown.
    srv.api_port = apihelp.api_port(srv)
    a = Api(srv)
    e = a.err("GET", "/api/info", status=404, code="not_found")
    assert "off" in e["message"]
    a.err("POST", "/api/publish", {"room": "r", "data": 1}, status=404, code="not_found", key=None)


def test_api_off_with_empty_keys_file(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, keys=())
    Api(srv).err("GET", "/api/info", status=404, code="not_found")


def test_missing_and_wrong_key(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    st, obj, hdrs = a.get("/api/info", key=None)
    assert st == 401 and obj["error"]["code"] == "unauthenticated"
    assert hdrs.get("www-authenticate") == "Bearer"
    a.err("GET", "/api/info", status=401, code="unauthenticated", key=KEY1[:-1])   # a prefix
    a.err("GET", "/api/info", status=401, code="unauthenticated", key=KEY1 + "x")  # longer
    a.err("GET", "/api/info", status=401, code="unauthenticated", key=KEY2)
    st, obj, _ = a.get("/api/info", key=None, headers={"Authorization": "Basic " + KEY1})
    assert st == 401
    # Unauthenticated callers learn nothing about the routes.
    a.err("GET", "/api/nope", status=401, key=None)
    assert a.ok("GET", "/api/info")["version"]


def test_key_rotation_sighup(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, keys=(("old", KEY1), ("new", KEY2)))
    a1, a2 = Api(srv, KEY1), Api(srv, KEY2)
    # Both live at once; `from` defaults to the key's name.
    c = srv.client("watcher")
    c.join("rot")
    assert a1.ok("POST", "/api/publish", {"room": "rot", "data": 1})["seq"] == 1
    assert a2.ok("POST", "/api/publish", {"room": "rot", "data": 2})["seq"] == 2
    assert [c.next_json()["from"] for _ in range(2)] == ["old", "new"]
    # The old key is removed and the file reloaded: it stops working, the new one goes on,
    # on the same keep-alive connections.
    apihelp.write_keys(srv.keys_path, [("new", KEY2)])
    srv.send_signal(signal.SIGHUP)
    apihelp.wait_for(lambda: "api_keys_reload=ok" in srv.log(), what="reload")
    a1.err("GET", "/api/info", status=401, code="unauthenticated")
    assert a2.ok("GET", "/api/info")
    # A broken file keeps the keys that work.
    with open(srv.keys_path, "w") as f:
        f.write("just-one-field\n")
    srv.send_signal(signal.SIGHUP)
    apihelp.wait_for(lambda: "api_keys_reload=failed" in srv.log(), what="failed reload")
    assert a2.ok("GET", "/api/info")


def test_bad_keys_file_refused_at_start(parley, tmp_path):
    import pytest
    path = tmp_path / "short.keys"
    path.write_text("backend tooshort\n")
    with pytest.raises(AssertionError, match="exited"):
        parley("--api-keys-file", str(path))


def test_routing_errors(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    a.err("GET", "/api/nope", status=404, code="not_found")
    a.err("GET", "/api/publish", status=405, code="method_not_allowed")
    a.err("POST", "/api/info", {}, status=405, code="method_not_allowed")
    a.err("PUT", "/api/publish", {"room": "r", "data": 1}, status=405, code="method_not_allowed")


def test_body_errors(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    P = "/api/publish"
    a.err("POST", P, raw=b'{"room":"r","data":', code="bad_json")
    a.err("POST", P, raw=b'[1,2]', code="bad_json")
    a.err("POST", P, raw=b'\xff\xfe', code="bad_json")
    a.err("POST", P, raw=b'', code="bad_json")                      # no body at all
    a.err("POST", P, {"data": 1}, code="bad_request")               # missing room
    a.err("POST", P, {"room": "r"}, code="bad_request")              # missing data
    a.err("POST", P, {"room": 5, "data": 1}, code="bad_request")     # wrong type
    a.err("POST", P, {"room": "no spaces", "data": 1}, code="bad_room")
    a.err("POST", P, {"room": "r", "data": 1, "persist": "yes"}, code="bad_request")
    a.err("POST", P, {"room": "r", "data": 1, "from": ""}, code="bad_name")
    a.err("POST", P, {"room": "r", "data": 1, "from": "x" * 33}, code="bad_name")
    a.err("POST", P, {"room": "r", "data": json.loads("[" * 40 + "]" * 40)}, code="bad_request")
    a.err("POST", "/api/disconnect", {"user": "u", "code": 1000}, code="bad_request")
    a.err("POST", "/api/disconnect", {"user": "u", "reason": "r" * 124}, code="bad_request")
    a.err("POST", "/api/broadcast", {"rooms": "r", "data": 1}, code="bad_request")
    a.err("POST", "/api/broadcast", {"rooms": [], "data": 1}, code="bad_request")
    a.err("POST", "/api/broadcast", {"rooms": ["a", 1], "data": 1}, code="bad_request")
    a.err("GET", "/api/history?room=r&limit=0", code="bad_request")
    a.err("GET", "/api/history?room=r&limit=101", code="bad_request")
    a.err("GET", "/api/history?room=r&before=x", code="bad_request")
    a.err("GET", "/api/history", code="bad_request")
    a.err("GET", "/api/history?room=a%20b", code="bad_room")
    # Still one keep-alive connection after all of that.
    assert a.ok("POST", P, {"room": "r", "data": 1})["seq"] == 1


def body_of(size):
    """A publish body of exactly size bytes."""
    head, tail = b'{"room":"big","data":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_body_limit_exact_and_one_past(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--api-max-body", "4096", "--max-message-size", "65536")
    a = Api(srv)
    assert a.ok("POST", "/api/publish", raw=body_of(4096))["seq"] == 1
    e = a.err("POST", "/api/publish", raw=body_of(4097), status=413, code="too_large")
    assert "4096" in e["message"]
    # The connection goes on after a 413 (the body was read and dropped).
    assert a.ok("POST", "/api/publish", raw=body_of(100))["seq"] == 2
    # The message limit is the protocol's, the body limit the API's: both apply.
    srv2 = apihelp.start(parley, tmp_path, "--api-max-body", "65536", "--max-message-size", "1024")
    Api(srv2).err("POST", "/api/publish", raw=body_of(2048), status=413, code="too_large")


def test_lying_content_length(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--api-max-body", "4096", "--api-body-timeout", "2")
    head = ("POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n" % KEY1).encode()
    # Far past the limit: refused at once, and the connection closed.
    st, hdrs, body = apihelp.raw_exchange(srv.api_port, head + b"Content-Length: 999999999\r\n\r\n")
    assert st == 413 and hdrs.get("connection") == "close"
    # Announces more than it sends: the body deadline closes it.
    s = socket.create_connection(("127.0.0.1", srv.api_port), timeout=10)
    s.sendall(head + b"Content-Length: 100\r\n\r\n{\"room\":")
    t0 = time.monotonic()
    assert s.recv(100) == b""
    assert 1.0 < time.monotonic() - t0 < 6.0
    s.close()
    # Announces less than it sends: the rest is not a request, lws refuses it.
    s = socket.create_connection(("127.0.0.1", srv.api_port), timeout=5)
    s.sendall(head + b"Content-Length: 2\r\n\r\n{}garbage-that-is-not-http\r\n\r\n")
    st, _, body = apihelp.read_response(s)
    assert st == 400 and json.loads(body)["error"]["code"] == "bad_request"  # {} lacks room
    rest = apihelp.read_response(s)
    assert rest is None or rest[0] >= 400
    s.close()
    assert Api(srv).ok("GET", "/api/info")


def chunked(parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_chunked_bodies(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--api-max-body", "4096")
    head = ("POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Transfer-Encoding: chunked\r\n\r\n" % KEY1).encode()
    st, hdrs, body = apihelp.raw_exchange(srv.api_port, head + chunked([b'{"room":"c",', b'"data":7}']))
    assert st == 200 and json.loads(body)["data"]["seq"] == 1
    assert hdrs.get("connection") == "close"
    big = body_of(4097)
    st, _, body = apihelp.raw_exchange(srv.api_port, head + chunked([big[:2000], big[2000:]]))
    assert st == 413
    st, _, body = apihelp.raw_exchange(srv.api_port, head + b"zz\r\n{}\r\n0\r\n\r\n")
    assert st == 400 and json.loads(body)["error"]["code"] == "bad_request"


def test_keepalive_many_requests_one_connection(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    s = socket.create_connection(("127.0.0.1", srv.api_port), timeout=5)
    for i in range(1, 51):
        body = json.dumps({"room": "ka", "data": i}).encode()
        s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY1.encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        st, hdrs, resp = apihelp.read_response(s)
        assert st == 200 and json.loads(resp)["data"]["seq"] == i
        assert hdrs.get("connection") != "close"
    s.close()


def test_slowloris_headers_and_body(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path, "--api-body-timeout", "3")
    port = srv.api_port
    result = {}

    def drip(name, prefix, data, delay):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        t0 = time.monotonic()
        try:
            s.sendall(prefix)
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                time.sleep(delay)
                s.setblocking(False)
                try:
                    if s.recv(100) == b"":
                        break
                except BlockingIOError:
                    pass
                finally:
                    s.setblocking(True)
        except OSError:
            pass
        result[name] = time.monotonic() - t0
        s.close()

    auth = b"Authorization: Bearer " + KEY1.encode() + b"\r\n"
    hdr = b"POST /api/publish HTTP/1.1\r\nHost: x\r\n" + auth + b"X-Pad: " + b"a" * 500 + b"\r\n\r\n"
    threads = [
        threading.Thread(target=drip, args=("headers", b"", hdr, 0.1)),
        threading.Thread(target=drip, args=("body", b"POST /api/publish HTTP/1.1\r\nHost: x\r\n" + auth +
                                            b"Content-Length: 1000\r\n\r\n", b"x" * 1000, 0.1)),
    ]
    for t in threads:
        t.start()
    # Others are served meanwhile, promptly.
    a = Api(srv)
    for i in range(20):
        t0 = time.monotonic()
        a.ok("GET", "/api/info")
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.1)
    for t in threads:
        t.join(40)
    # headers: lws's timeout_secs (10 s) for the whole head; body: api_body_timeout (3 s).
    assert 8.0 < result["headers"] < 14.0, result
    assert 2.5 < result["body"] < 6.0, result
    # (a fresh connection: the one above sat idle past the keep-alive timeout, 5 s)
    assert Api(srv).ok("GET", "/api/info")


def test_idle_keepalive_closed(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    s = socket.create_connection(("127.0.0.1", srv.api_port), timeout=15)
    s.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY1.encode() + b"\r\n\r\n")
    assert apihelp.read_response(s)[0] == 200
    t0 = time.monotonic()
    assert s.recv(100) == b""
    assert 3.0 < time.monotonic() - t0 < 9.0
    s.close()


def test_metrics_count_api_requests(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    a.ok("GET", "/api/info")
    a.ok("GET", "/api/info")
    a.err("GET", "/api/info", status=401, key="nope-nope-nope-nope")
    a.err("GET", "/api/nope", status=404)
    # /metrics lives where /api does by default (the admin listener).
    st, _, body = apihelp.raw_exchange(srv.api_port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200
    text = body.decode()
    assert 'parley_api_requests_total{status="2xx"} 2' in text
    assert 'parley_api_requests_total{status="401"} 1' in text
    assert 'parley_api_requests_total{status="404"} 1' in text


def test_refused_with_a_body_keeps_the_connection_in_step(parley, tmp_path):
    # 401, 404 and 405 with a body: the body is read and dropped before the answer, so the next
    # request on the same keep-alive connection is parsed from its own first byte.
    srv = apihelp.start(parley, tmp_path)
    a = Api(srv)
    big = {"room": "r", "data": "x" * 20000}
    a.err("POST", "/api/publish", big, status=401, key="wrong-wrong-wrong-wrong")
    a.err("POST", "/api/nope", big, status=404)
    a.err("DELETE", "/api/publish", big, status=405)
    a.err("POST", "/api/info", big, status=405)
    assert a.ok("POST", "/api/publish", {"room": "r", "data": 1})["seq"] == 1
    assert a.ok("GET", "/api/info")["version"]


def test_served_on_the_admin_listener_public_only_when_asked(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    assert srv.api_port == srv.admin_port != srv.port
    assert Api(srv).ok("GET", "/api/info")
    # Not on the public listener by default: /api is just a missing file there.
    st, _, body = apihelp.raw_exchange(srv.port, ("GET /api/info HTTP/1.1\r\nHost: x\r\n"
                                                  "Authorization: Bearer %s\r\n\r\n" % KEY1).encode())
    assert st == 404 and b'"ok"' not in body
    # The admin listener still serves /metrics and /healthz next to /api.
    assert apihelp.raw_exchange(srv.admin_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    # api_public = 1: on both.
    pub = apihelp.start(parley, tmp_path, "--api-public", "1")
    pub.api_port = pub.port
    assert Api(pub).ok("GET", "/api/info")["version"]
    pub.api_port = pub.admin_port
    assert Api(pub).ok("GET", "/api/info")["version"]
