"""HTTP API with a failing disk: persisted publishes answer 503 storage_failed, /api/info says
"failing", volatile publishes still go through, and it recovers when the disk does. Mounts a small
tmpfs (root needed, as for test_storage_disk.py)."""

import os
import subprocess
import tempfile
import time

import pytest

import apihelp
from apihelp import Api


@pytest.fixture
def small_disk():
    d = tempfile.mkdtemp(prefix="parley-apidisk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d], capture_output=True, text=True)
    assert r.returncode == 0, "mounting a tmpfs needs root: %s" % r.stderr
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], capture_output=True)
        os.rmdir(d)


def test_failing_disk_is_503_and_shows_in_info(parley, tmp_path, small_disk):
    srv = parley("--api-keys-file", _keys(tmp_path), "--flush-interval-ms", "10",
                 data_dir=os.path.join(small_disk, "data"))
    srv.api_port = apihelp.api_port(srv)
    a = Api(srv)
    c = srv.client("reader")
    c.join("d")
    assert a.ok("POST", "/api/publish", {"room": "d", "data": "before"})["seq"] == 1
    c.next_json()
    filler = os.path.join(small_disk, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass  # ENOSPC
    finally:
        os.close(fd)
    big = "x" * 2000
    code = None
    for i in range(5000):
        st, obj, _ = a.post("/api/publish", {"room": "d", "data": big})
        if st != 200:
            assert st == 503, (st, obj)
            code = obj["error"]["code"]
            break
        c.next_json()
    assert code == "storage_failed", code
    apihelp.wait_for(lambda: a.ok("GET", "/api/info")["storage"]["state"] == "failing", what="failing")
    # Live traffic goes on.
    assert a.ok("POST", "/api/publish", {"room": "d", "data": "live", "persist": False}) == {}
    assert c.next_json()["data"] == "live"
    os.unlink(filler)
    deadline = time.monotonic() + 10
    while True:
        st, obj, _ = a.post("/api/publish", {"room": "d", "data": "after"})
        if st == 200:
            break
        assert st == 503 and time.monotonic() < deadline, (st, obj)
        time.sleep(0.1)
    apihelp.wait_for(lambda: a.ok("GET", "/api/info")["storage"]["state"] == "ok", what="recovered")


def _keys(tmp_path):
    path = os.path.join(str(tmp_path), "api.keys")
    apihelp.write_keys(path, [("backend", apihelp.KEY1)])
    return path
