"""Helpers for the test_cluster_* files: a real redis-server with AOF on a free port, in a temp dir,
and N parleyd nodes started with --cluster against it (distinct ports, data dirs and admin ports).

    def test_x(cluster):
        redis = cluster.redis()               # started, AOF on (appendfsync everysec by default)
        a, b, c = cluster.nodes(3)            # conftest Servers, each with its own data dir
        ...
        redis.restart()                       # SIGTERM + start again on the same port and dir
        redis.kill9(); redis.start()          # a crash: AOF everysec may lose the last second

Every node still running at teardown gets SIGTERM and must exit 0 (conftest.finish_servers checks
the logs for sanitizer reports too); redis is killed and its directory removed.
"""

import os
import shutil
import signal
import socket
import select
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import HOST, NO_RATE_LIMITS, Server, finish_servers, parleyd_argv, parleyd_path


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Redis:
    """A redis-server child: AOF on, its own dir, loopback only."""

    def __init__(self, root, appendfsync="everysec", extra=()):
        if not shutil.which("redis-server"):
            pytest.skip("redis-server not installed (scripts/deps.sh --test)")
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=root)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.extra = list(extra)
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://%s:%d" % (HOST, self.port)

    def start(self, timeout=10.0):
        argv = ["redis-server", "--port", str(self.port), "--bind", HOST, "--dir", self.dir,
                "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
                "--protected-mode", "no", "--loglevel", "warning",
                "--logfile", os.path.join(self.dir, "redis.log")] + self.extra
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.cmd("PING") == "PONG":
                    return
            except (OSError, RuntimeError):  # not listening yet, or LOADING the AOF
                pass
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited %r" % self.proc.returncode)
            time.sleep(0.05)
        raise AssertionError("redis-server did not answer PING")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)

    def kill9(self):
        self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def snapshot(self):
        """Copies the AOF directory as it is on disk now (what a crash with appendfsync everysec
        could come back with a second later: the writes since are lost)."""
        src = os.path.join(self.dir, "appendonlydir")
        self._snap = self.dir + ".snap"
        shutil.rmtree(self._snap, ignore_errors=True)
        shutil.copytree(src, self._snap)

    def crash_to_snapshot(self):
        """kill -9, then put the snapshot's AOF back: Redis restarts without the writes made since
        snapshot() (AOF tail cut mid-command is accepted: aof-load-truncated yes)."""
        self.kill9()
        dst = os.path.join(self.dir, "appendonlydir")
        shutil.rmtree(dst)
        shutil.copytree(self._snap, dst)

    def cmd(self, *args, timeout=5.0):
        """One command over a fresh connection (RESP); returns the decoded reply."""
        s = socket.create_connection((HOST, self.port), timeout=timeout)
        try:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read_resp(f)
        finally:
            s.close()


def _read_resp(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if t == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_resp(f) for _ in range(n)]
    raise OSError("bad RESP line %r" % line)


class RedisProxy:
    """A TCP relay in front of a Redis, for one node's --cluster URL: while paused, nothing Redis sends
    reaches the node (it is kept, and goes on resume), so the node falls behind the cluster's log
    while the others go on. What the node sends still reaches Redis."""

    def __init__(self, redis):
        self.target = (HOST, redis.port)
        self.lsock = socket.socket()
        self.lsock.bind((HOST, 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.url = "redis://%s:%d" % (HOST, self.port)
        self.running = threading.Event()
        self.running.set()
        self.closed = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def pause(self):
        self.running.clear()

    def resume(self):
        self.running.set()

    def _accept(self):
        while not self.closed:
            try:
                node, _ = self.lsock.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            for src, dst, gated in ((node, up, False), (up, node, True)):
                t = threading.Thread(target=self._pipe, args=(src, dst, gated), daemon=True)
                t.start()
                self.threads.append(t)

    def _pipe(self, src, dst, gated):
        try:
            while not self.closed:
                r, _, _ = select.select([src], [], [], 0.1)
                if not r:
                    continue
                if gated:
                    self.running.wait()
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sck in (src, dst):
            try:
                sck.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.running.set()
        self.lsock.close()


class Cluster:
    def __init__(self, request, root):
        self.request = request
        self.root = root
        self.exe = parleyd_path()
        self.servers = []
        self._redis = []

    def redis(self, **kw):
        r = Redis(self.root, **kw)
        self._redis.append(r)
        return r

    def node(self, redis, *flags, data_dir=None, name=None, wait_ready=True):
        i = len(self.servers)
        if data_dir is None:
            data_dir = os.path.join(self.root, "node%d" % i)
        log_path = os.path.join(self.root, "parleyd%d.log" % i)
        argv = (parleyd_argv(self.exe, data_dir) + NO_RATE_LIMITS +
                ["--cluster", redis.url, "--node-id", name or "node%d" % i,
                 "--cluster-timeout-ms", "2000", "--cluster-hold-ms", "3000"] + [str(f) for f in flags])
        srv = Server(argv, data_dir, log_path)
        self.servers.append(srv)
        if wait_ready:
            wait_log(srv, "msg=cluster_ready")
        return srv

    def nodes(self, redis, n, *flags):
        return [self.node(redis, *flags) for _ in range(n)]

    def close(self):
        try:
            finish_servers(self.servers, self.request, "node")
        finally:
            for r in self._redis:
                try:
                    r.kill9()
                except Exception:
                    pass


def wait_log(srv, text, timeout=15.0, count=1):
    """Waits until srv's log holds `text` at least `count` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.log().count(text) >= count:
            return
        if not srv.running():
            raise AssertionError("node exited %r waiting for %r:\n%s" % (srv.proc.returncode, text, srv.log()))
        time.sleep(0.05)
    raise AssertionError("no %r in the log within %.0fs:\n%s" % (text, timeout, srv.log()))


def wait_for(cond, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def metric(srv, name):
    """The value of a metric line `name ...` (first match), as a float."""
    status, _, body = srv.metrics_get()
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric %s" % name)


def history(c, room, page=100):
    """The whole history of room, oldest first, paging backwards."""
    out, before = [], None
    while True:
        fields = {"room": room, "limit": page}
        if before is not None:
            fields["before"] = before
        d = c.ok("history", skip=True, **fields)
        out = d["messages"] + out
        if not d["more"]:
            return out
        before = d["messages"][0]["seq"]


@pytest.fixture
def cluster(request, tmp_data_root):
    c = Cluster(request, tmp_data_root)
    yield c
    c.close()
