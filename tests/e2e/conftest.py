"""Fixtures for the Parley end-to-end tests: start the real parleyd, open protocol-level clients.

`parley` is a factory: `srv = parley("--max-rooms", "3")` starts a parleyd with `--port 0 --data-dir TMP`
plus the given flags and returns a `Server`. `srv.client()` opens a `ParleyClient` that has already read
its welcome frame. Every server still running at teardown gets SIGTERM and must exit 0 within 10 s;
its stderr (kept in a file) is printed when the test failed or the exit was wrong.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from wsclient import HandshakeError, WSClient, WSClosed, Close  # noqa: F401 (re-exported for tests)

HOST = "127.0.0.1"
LISTEN_RE = re.compile(rb"msg=listening\b.*\bport=(\d+)")
# The admin listener (/metrics, /healthz): tests start it on an ephemeral loopback port, never 9180.
ADMIN_RE = re.compile(rb"msg=admin_listening\b.*\bport=(\d+)")


# Most tests blast commands as fast as Python can send them; per-connection rate limits would only
# get in their way. Tests of the limits themselves pass their own values (a later flag wins).
NO_RATE_LIMITS = ["--rate-messages", "1000000", "--rate-burst", "1000000", "--rate-joins", "1000000",
                  "--rate-history", "1000000", "--rate-names", "1000000"]


def parleyd_path():
    path = os.environ.get("PARLEYD")
    if not path:
        pytest.skip("PARLEYD not set (path to the parleyd binary)")
    if not os.access(path, os.X_OK):
        pytest.fail("PARLEYD=%s is not executable" % path)
    return path


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------- client


class ParleyClient(WSClient):
    """A WSClient that speaks the Parley JSON protocol.

    backlog: frames read while waiting for a specific reply (with skip=True); next_json() drains it first.
    """

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.backlog = []
        self._next_id = 0
        self.welcome = self.recv_json()
        assert self.welcome.get("type") == "welcome", "first frame is not welcome: %r" % (self.welcome,)
        self.user = self.welcome.get("user")

    def new_id(self):
        self._next_id += 1
        return self._next_id

    def next_json(self, timeout=None):
        """Next frame: from the backlog first, then from the socket."""
        if self.backlog:
            return self.backlog.pop(0)
        return self.recv_json(timeout)

    def send_cmd(self, type_, **fields):
        """Send a command with a fresh id (unless id given, or id=None for none); returns the id."""
        if "id" not in fields:
            fields["id"] = self.new_id()
        cid = fields["id"]
        if cid is None:
            del fields["id"]
        obj = {"type": type_}
        obj.update(fields)
        self.send_json(obj)
        return cid

    def wait_reply(self, cid, skip=False, timeout=None):
        """Read until the reply with id `cid`. Other frames go to the backlog when skip=True, else fail."""
        for i, f in enumerate(self.backlog):
            if f.get("type") == "reply" and f.get("id") == cid:
                return self.backlog.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self.recv_json(timeout=max(0.001, deadline - time.monotonic()))
            if f.get("type") == "reply" and f.get("id") == cid:
                return f
            if not skip:
                raise AssertionError("waiting for reply id=%r, got unexpected frame %r" % (cid, f))
            self.backlog.append(f)

    def request(self, type_, skip=False, timeout=None, **fields):
        """Send a command and return its reply frame (whole frame, ok true or false)."""
        cid = self.send_cmd(type_, **fields)
        return self.wait_reply(cid, skip=skip, timeout=timeout)

    def ok(self, type_, skip=False, timeout=None, **fields):
        """Send a command, assert the reply is ok, return its data."""
        r = self.request(type_, skip=skip, timeout=timeout, **fields)
        assert r.get("ok") is True, "%s %r failed: %r" % (type_, fields, r)
        assert "data" in r, "ok reply without data: %r" % (r,)
        return r["data"]

    def err(self, type_, skip=False, timeout=None, **fields):
        """Send a command, assert the reply is an error, return its code."""
        r = self.request(type_, skip=skip, timeout=timeout, **fields)
        assert r.get("ok") is False, "%s %r should have failed: %r" % (type_, fields, r)
        assert isinstance(r.get("error"), dict), "error reply without error object: %r" % (r,)
        assert isinstance(r["error"].get("message"), str), "error without message: %r" % (r,)
        return r["error"].get("code")

    def hello(self, name):
        d = self.ok("hello", name=name)
        self.user = d["user"]
        return d

    def join(self, room, skip=False, **fields):
        return self.ok("join", room=room, skip=skip, **fields)

    def sync(self, timeout=None):
        """Round-trip a ping, putting everything that arrives before its reply into the backlog."""
        return self.ok("ping", skip=True, timeout=timeout)

    def assert_nothing_pending(self, seconds=0.3):
        """No unread frame in the backlog and none arriving within `seconds`."""
        assert not self.backlog, "unexpected frames: %r" % (self.backlog,)
        self.expect_silence(seconds)


# ---------------------------------------------------------------------------------------- server


class Server:
    """A running parleyd. port/data_dir/log_path; client() opens protocol clients."""

    def __init__(self, argv, data_dir, log_path):
        self.argv = argv
        self.data_dir = data_dir
        self.log_path = log_path
        self.clients = []
        self.port = None
        self.returncode = None
        self._log = open(log_path, "ab")
        self._log_start = self._log.tell()  # only lines written by this process count
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self._wait_listening(10.0)

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        with open(self.log_path, "rb") as f:
            start = self._log_start
            while time.monotonic() < deadline:
                f.seek(start)
                data = f.read()
                for line in data.splitlines():
                    m = LISTEN_RE.search(line)
                    if m:
                        self.port = int(m.group(1))
                        return
                if self.proc.poll() is not None:
                    raise AssertionError("parleyd exited with %r before listening:\n%s"
                                         % (self.proc.returncode, self.log()))
                time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError("no msg=listening line within %.0fs:\n%s" % (timeout, self.log()))

    @property
    def admin_port(self):
        """The admin listener's port, from its log line (logged before the public one)."""
        for line in self.log().encode().splitlines():
            m = ADMIN_RE.search(line)
            if m:
                return int(m.group(1))
        raise AssertionError("no msg=admin_listening line with a port:\n%s" % self.log())

    def metrics_get(self, timeout=5.0):
        """GET /metrics from the admin listener; returns (status, headers, body)."""
        return self.http_get("/metrics", timeout=timeout, port=self.admin_port)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def client(self, name=None, timeout=5.0, rcvbuf=None, path="/ws"):
        c = ParleyClient(HOST, self.port, path=path, timeout=timeout, rcvbuf=rcvbuf)
        self.clients.append(c)
        if name is not None:
            c.hello(name)
        return c

    def raw_client(self, path="/ws", timeout=5.0, rcvbuf=None):
        """A WSClient that has done the handshake but not read the welcome frame."""
        c = WSClient(HOST, self.port, path=path, timeout=timeout, rcvbuf=rcvbuf)
        self.clients.append(c)
        return c

    def http_get(self, path, timeout=5.0, port=None):
        """Plain HTTP/1.1 GET (to the public port unless port is given); returns (status, headers
        dict, body bytes)."""
        port = self.port if port is None else port
        s = socket.create_connection((HOST, port), timeout=timeout)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                       % (path, HOST, port)).encode())
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    head, body = data.split(b"\r\n\r\n", 1)
                    hdrs = _parse_headers(head)
                    if "content-length" in hdrs and len(body) >= int(hdrs["content-length"]):
                        break
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return _parse_response(head, body)

    def running(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send sig and wait for exit; returns the exit code (negative for a signal). Raises on timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "timeout"
                raise AssertionError("parleyd did not exit within %.0fs after %s:\n%s"
                                     % (timeout, signal.Signals(sig).name, self.log()))
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode

    def close_clients(self):
        for c in self.clients:
            c.close_socket()
        self.clients = []


def _parse_headers(head):
    hdrs = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            hdrs[k.strip().decode("latin-1").lower()] = v.strip().decode("latin-1")
    return hdrs


def _parse_response(head, body):
    """(status, headers dict, body) of an HTTP/1.1 response split at its blank line; the body is
    cut to Content-Length or de-chunked."""
    status = int(head.split(b"\r\n", 1)[0].split(b" ")[1])
    hdrs = _parse_headers(head)
    if "content-length" in hdrs:
        body = body[: int(hdrs["content-length"])]
    elif hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return status, hdrs, body


def _dechunk(body):
    out = b""
    while body:
        line, _, rest = body.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


# ---------------------------------------------------------------------------------------- fixtures


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def tmp_data_root():
    d = tempfile.mkdtemp(prefix="parley-e2e-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def parley(request, tmp_data_root):
    """Factory: parley(*flags, data_dir=None) -> Server. data_dir reuses a directory (restart tests)."""
    exe = parleyd_path()
    servers = []

    def start(*flags, data_dir=None):
        if data_dir is None:
            data_dir = os.path.join(tmp_data_root, "data%d" % len(servers))
        log_path = os.path.join(tmp_data_root, "parleyd%d.log" % len(servers))
        argv = parleyd_argv(exe, data_dir) + NO_RATE_LIMITS + [str(f) for f in flags]
        srv = Server(argv, data_dir, log_path)
        servers.append(srv)
        return srv

    yield start

    finish_servers(servers, request, "parleyd")


def parleyd_argv(exe, data_dir):
    """The flags every test server starts with: an ephemeral loopback port, an ephemeral admin port
    (never the default 9180, which parallel tests would fight over) and its own data dir."""
    return [exe, "--port", "0", "--host", HOST, "--admin-listen", HOST + ":0", "--data-dir", data_dir]


def call_failed(request):
    """True when the test's call phase failed (see pytest_runtest_makereport)."""
    return getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed


def finish_servers(servers, request, label):
    """Fixture teardown for parleyd servers: close their clients, stop every one still running with
    SIGTERM (must exit 0 within 10 s), fail on a sanitizer report in any log; logs are printed,
    headed `----- LABEL[i] ARGV`, when the test failed or a server misbehaved."""
    problems = []
    for srv in servers:
        srv.close_clients()
        if srv.returncode is None:
            try:
                rc = srv.stop(signal.SIGTERM, 10.0)
            except AssertionError as e:
                problems.append(str(e))
                continue
            if rc != 0:
                problems.append("parleyd exited %r after SIGTERM (want 0)" % (rc,))
    for i, srv in enumerate(servers):
        # A sanitized build (-Db_sanitize=address,undefined) reports here even when it keeps going.
        text = srv.log()
        for marker in ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer"):
            if marker in text:
                problems.append("parleyd[%d] log has %r" % (i, marker))
    if call_failed(request) or problems:
        for i, srv in enumerate(servers):
            sys.stderr.write("----- %s[%d] %s\n%s\n" % (label, i, " ".join(srv.argv), srv.log()))
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def srv(parley):
    """A parleyd with default flags."""
    return parley()
