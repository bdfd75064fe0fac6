"""A failing disk: full, or remounted read-only under a running parleyd. The server keeps serving
live traffic, answers persisted publishes with storage_failed, says so on /healthz, loses no
acknowledged message, and recovers by itself when the disk does.

The data directory is a small tmpfs mounted by the test (root is needed, as in CI and the README's
test command); it is unmounted whatever happens.
"""

import os
import subprocess
import tempfile
import time

import pytest

from storagehelp import read_all_history


@pytest.fixture
def small_disk():
    d = tempfile.mkdtemp(prefix="parley-disk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d], capture_output=True, text=True)
    assert r.returncode == 0, "mounting a tmpfs needs root (the README's test command runs as root): %s" % r.stderr
    try:
        yield d
    finally:
        subprocess.run(["mount", "-o", "remount,rw", d], capture_output=True)
        subprocess.run(["umount", "-l", d], capture_output=True)
        os.rmdir(d)


def publish_until_refused(pub, room, limit, data):
    """Publishes persisted messages until one is refused; returns (acked seqs, error code)."""
    acked = []
    for i in range(limit):
        r = pub.request("publish", room=room, data=data % i, echo=False)
        if not r["ok"]:
            return acked, r["error"]["code"]
        acked.append(r["data"]["seq"])
    return acked, None


def wait_healthz(srv, status, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got, _, body = srv.http_get("/healthz")
        if got == status:
            return body
        assert time.monotonic() < deadline, "healthz stayed %r %r, want %r" % (got, body, status)
        time.sleep(0.05)


def live_still_works(pub, sub, room):
    pub.ok("publish", room=room, data="volatile", persist=False, echo=False)
    m = sub.next_json()
    assert m["type"] == "message" and m["data"] == "volatile" and "seq" not in m, m


def recovers(pub, room, timeout=10):
    """Persisted publishes work again (the writer retries with backoff up to 1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        r = pub.request("publish", room=room, data="after", echo=False)
        if r["ok"]:
            return r["data"]["seq"]
        assert r["error"]["code"] in ("storage_failed", "overloaded"), r
        assert time.monotonic() < deadline, "storage did not recover: %r" % (r,)
        time.sleep(0.1)


def test_full_disk_refuses_then_recovers_without_losing_acknowledged(parley, small_disk):
    s = parley("--flush-interval-ms", "10", data_dir=os.path.join(small_disk, "data"))
    pub, sub = s.client("pub"), s.client("sub")
    pub.join("r")
    sub.join("r")
    big = "x" * 2000 + "-%d"
    acked, _ = publish_until_refused(pub, "r", 20, big)
    assert len(acked) == 20
    for _ in acked:
        sub.next_json()
    # fill the disk, leaving a few KB
    filler = os.path.join(small_disk, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass  # ENOSPC: the disk is full
    finally:
        os.close(fd)
    more, code = publish_until_refused(pub, "r", 5000, big)
    acked += more
    assert code == "storage_failed", code
    wait_healthz(s, 503)
    for _ in range(len(more)):  # the subscriber got every acknowledged message live
        m = sub.next_json()
        assert m["type"] == "message"
    live_still_works(pub, sub, "r")
    os.unlink(filler)
    seq = recovers(pub, "r")
    wait_healthz(s, 200)
    sub.sync()
    stored = [m["seq"] for m in read_all_history(pub, "r")]
    assert set(acked) <= set(stored), "acknowledged messages lost: %r" % sorted(set(acked) - set(stored))[:10]
    assert stored == list(range(1, seq + 1))


def test_read_only_data_directory_is_refused_at_start_with_a_clear_error():
    # A file system cannot be remounted read-only under open files, so this case is the start-up one:
    # parleyd (as an unprivileged user, root ignores permissions) refuses to start and says why;
    # under systemd Restart=on-failure retries until the directory is fixed.
    import pathlib
    import shutil
    top = pathlib.Path(tempfile.mkdtemp(prefix="parley-ro-"))  # /tmp/...: traversable by nobody
    os.chmod(top, 0o755)
    d = top / "data"
    d.mkdir()
    exe = os.environ["PARLEYD"]
    # create the database as root first, so the unprivileged run finds it read-only
    p = subprocess.Popen([exe, "--port", "0", "--host", "127.0.0.1", "--admin-listen", "off", "--data-dir", str(d)],
                         stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert "msg=listening" in line, line
    p.terminate()
    assert p.wait(10) == 0
    os.chmod(d, 0o755)
    for f in d.iterdir():
        os.chmod(f, 0o644)
    r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        exe, "--port", "0", "--host", "127.0.0.1", "--admin-listen", "off", "--data-dir", str(d)],
                       capture_output=True, text=True, timeout=20)
    shutil.rmtree(top)
    assert r.returncode != 0
    assert "read-only" in r.stderr and "parley.db" in r.stderr, r.stderr
