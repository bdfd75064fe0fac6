"""HTTP side: upgrade only on /ws, health check."""

import os

import pytest

from wsclient import HandshakeError, WSClient
from conftest import HOST


@pytest.mark.parametrize("path", ["/", "/other", "/ws/x", "/wsx", "/healthz"])
def test_upgrade_on_non_ws_path_is_refused(srv, path):
    with pytest.raises(HandshakeError) as e:
        WSClient(HOST, srv.port, path=path, timeout=5)
    assert e.value.status != 101


def test_upgrade_on_ws_path_works(srv):
    c = WSClient(HOST, srv.port, path="/ws", timeout=5)
    assert c.recv_json()["type"] == "welcome"
    c.close_socket()


def test_healthz_returns_200_ok(srv):
    status, hdrs, body = srv.http_get("/healthz")
    assert status == 200
    assert body.strip() == b"ok"


def test_healthz_still_200_with_clients_connected(srv):
    a = srv.client("alice")
    a.join("r")
    status, _, _ = srv.http_get("/healthz")
    assert status == 200
    assert a.request("ping")["ok"] is True


def test_unknown_http_path_is_404(srv):
    status, _, _ = srv.http_get("/definitely-not-here.txt")
    assert status == 404


def test_root_serves_index_html_from_web_root(parley, tmp_data_root):
    web = os.path.join(tmp_data_root, "web")
    os.mkdir(web)
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>parley-e2e-marker</title>")
    s = parley("--web-root", web)
    status, hdrs, body = s.http_get("/")
    assert status == 200
    assert b"parley-e2e-marker" in body
    assert hdrs.get("content-type", "").startswith("text/html")


def test_web_root_does_not_serve_files_outside_it(parley, tmp_data_root):
    web = os.path.join(tmp_data_root, "web")
    os.mkdir(web)
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("index")
    with open(os.path.join(tmp_data_root, "secret.txt"), "w") as f:
        f.write("parley-e2e-secret")
    s = parley("--web-root", web)
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"):
        status, _, body = s.http_get(path)
        assert b"parley-e2e-secret" not in body, path
