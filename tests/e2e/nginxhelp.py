"""Helpers for the operations e2e tests: a real nginx in front of parleyd, clients that can bind a
source address, add request headers, speak TLS or use a Unix socket, and parleyd's `peer=` log lines.

Fixtures (import them into a test module: `from nginxhelp import nginx, parley_unix  # noqa: F401`):
- `nginx`: factory `nginx(upstream, web_root=None)` -> Nginx running deploy/nginx.conf (the shipped
  file, with its listen address, upstream and log paths rewritten) on an ephemeral loopback port.
  upstream is "127.0.0.1:PORT" or "unix:/path"; web_root switches to the site's variant (b), nginx
  serving the web client itself. nginx is mandatory: scripts/deps.sh --test installs it, so a
  missing nginx fails the test with a message instead of skipping it.
- `parley_unix`: factory `parley_unix(sock_path, *flags)` for a parleyd that may listen only on a Unix
  socket (--no-tcp 1 prints no TCP port, so conftest's `parley` cannot wait for it).
"""

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

from conftest import (HOST, ParleyClient, Server, _parse_headers, _parse_response, call_failed,
                      finish_servers, parleyd_argv, parleyd_path)
from wsclient import GUID, HandshakeError

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY_NGINX_CONF = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "nginx.conf"))
PEER_RE = re.compile(r'\bmsg=connect\b.*?\bpeer="?([^\s"]+)"?')


# ---------------------------------------------------------------------------------------- clients


class ProxyClient(ParleyClient):
    """A ParleyClient with control over the transport.

    source: local address to bind before connecting (e.g. "127.0.0.2", to look like another host);
    headers: extra request header lines ("X-Forwarded-For: 203.0.113.9");
    ssl_context: wrap the TCP socket in TLS (wss://), server_hostname for SNI and verification;
    unix_path: connect to this Unix socket instead of host:port.
    """

    def __init__(self, host, port, path="/ws", timeout=5.0, source=None, headers=(),
                 ssl_context=None, server_hostname=None, unix_path=None):
        self.source = source
        self.extra_headers = list(headers)
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.unix_path = unix_path
        super().__init__(host, port, path=path, timeout=timeout)

    def connect(self):
        self.sock = open_stream(self.host, self.port, self.timeout, source=self.source,
                                ssl_context=self.ssl_context, server_hostname=self.server_hostname,
                                unix_path=self.unix_path)
        self._handshake()

    def _handshake(self):
        # wsclient's handshake, plus the extra header lines.
        key = base64.b64encode(os.urandom(16)).decode()
        host = "localhost" if self.unix_path else "%s:%d" % (self.host, self.port)
        lines = ["GET %s HTTP/1.1" % self.path, "Host: %s" % host, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
        lines += self.extra_headers
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise HandshakeError(None, {}, bytes(self.buf))
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end])
        del self.buf[: end + 4]
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else None
        headers = _parse_headers(head)
        self.response_headers = headers
        if status != 101:
            raise HandshakeError(status, headers, bytes(self.buf))
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise HandshakeError(status, headers)


def open_stream(host, port, timeout, source=None, ssl_context=None, server_hostname=None,
                unix_path=None):
    """A connected (optionally TLS-wrapped) stream socket with `timeout` set."""
    if unix_path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(unix_path)
        except OSError:
            s.close()
            raise
        return s
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            s = ssl_context.wrap_socket(s, server_hostname=server_hostname or host)
    except BaseException:
        s.close()
        raise
    return s


def http_request(host, port, path, timeout=5.0, method="GET", headers=(), **stream_kw):
    """One HTTP/1.1 request with Connection: close; returns (status, headers dict, body bytes).

    stream_kw: source, ssl_context, server_hostname, unix_path (see open_stream)."""
    s = open_stream(host, port, timeout, **stream_kw)
    data = b""
    try:
        host_hdr = "localhost" if stream_kw.get("unix_path") else "%s:%d" % (host, port)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host_hdr, "Connection: close"]
        s.sendall(("\r\n".join(lines + list(headers)) + "\r\n\r\n").encode("latin-1"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no complete HTTP response from %s:%r%s: %r" % (host, port, path, data[:300])
    return _parse_response(head, body)


# ---------------------------------------------------------------------------------------- parleyd logs


def peers_logged(server):
    """Every client address parleyd logged in a `msg=connect ... peer=ADDR` line (needs debug level)."""
    return PEER_RE.findall(server.log())


def wait_next_peer(server, seen, timeout=3.0):
    """The peer of the first connect line after the first `seen` ones; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        peers = peers_logged(server)
        if len(peers) > seen:
            return normalize_addr(peers[seen])
        if time.monotonic() > deadline:
            raise AssertionError("no new msg=connect line with peer= in parleyd's log (run with "
                                 "--log-level debug); %d seen:\n%s" % (len(peers), server.log()[-3000:]))
        time.sleep(0.02)


def normalize_addr(addr):
    """IPv4-mapped IPv6 ("::ffff:127.0.0.2") and bracketed/ported forms to the bare address."""
    if addr.startswith("[") and "]" in addr:
        addr = addr[1:addr.index("]")]
    if addr.lower().startswith("::ffff:") and "." in addr:
        addr = addr[7:]
    return addr


# ---------------------------------------------------------------------------------------- nginx


def nginx_path():
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.access(p, os.X_OK):
            return p
    pytest.fail("nginx is not installed: these tests run a real nginx in front of parleyd. "
                "Install it with `apt-get install -y nginx` (scripts/deps.sh --test should do it).")


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def static_variant(text, web_root):
    """Swap the site's `location /` blocks: comment out (a), proxied, and enable (b), nginx serving
    the web client from web_root."""
    lines = text.split("\n")
    try:
        a = lines.index("    location / {")
        a_end = lines.index("    }", a)
        b = lines.index("    # location / {")
        b_end = lines.index("    # }", b)
    except ValueError:
        raise AssertionError("deploy/nginx.conf: the two `location /` blocks (a) and (b) are not where "
                             "the tests expect them")
    for i in range(a, a_end + 1):
        lines[i] = "    # " + lines[i][4:]
    for i in range(b, b_end + 1):
        lines[i] = "    " + lines[i][6:]
        if lines[i].strip().startswith("root "):
            lines[i] = "        root %s;" % web_root
    return "\n".join(lines)


def deploy_site(upstream, port, log_dir, web_root=None, admin=None):
    """deploy/nginx.conf with listen, upstreams and log paths rewritten for a test run; with web_root,
    the static client is served by nginx from there (variant (b)). admin: parleyd's admin listener
    ("127.0.0.1:PORT" or "unix:/path"); without it /metrics goes nowhere (502)."""
    with open(DEPLOY_NGINX_CONF) as f:
        text = f.read()
    if web_root:
        text = static_variant(text, web_root)
    subs = [
        ("server 127.0.0.1:8080;", "server %s;" % upstream),
        ("server 127.0.0.1:9180;", "server %s;" % (admin or "127.0.0.1:9")),
        ("listen 80;", "listen %s:%d;" % (HOST, port)),
        ("listen [::]:80;", ""),
        ("/var/log/nginx/", log_dir.rstrip("/") + "/"),
    ]
    for old, new in subs:
        active = [ln for ln in text.splitlines() if old in ln and not ln.lstrip().startswith("#")]
        assert active, "deploy/nginx.conf no longer has an active %r line (the tests rewrite it)" % old
        out = []
        for ln in text.splitlines():
            out.append(ln.replace(old, new) if not ln.lstrip().startswith("#") else ln)
        text = "\n".join(out) + "\n"
    return text


class Nginx:
    """An nginx master process of our own: prefix dir, generated nginx.conf including `site`."""

    def __init__(self, prefix, site_text_for_port):
        self.prefix = prefix
        self.exe = nginx_path()
        self.proc = None
        self.port = None
        self.returncode = None
        self.error_log = os.path.join(prefix, "error.log")
        os.makedirs(prefix, exist_ok=True)
        # Ephemeral port: nginx cannot listen on port 0 and report it, so pick a free one and retry
        # (bounded) if another process takes it first.
        for _attempt in range(3):
            port = free_port()
            self._write_conf(site_text_for_port(port))
            if self._start(port):
                self.port = port
                return
        raise AssertionError("nginx did not start after 3 attempts:\n%s" % self.log())

    def _write_conf(self, site_text):
        p = self.prefix
        self.site_path = os.path.join(p, "site.conf")
        with open(self.site_path, "w") as f:
            f.write(site_text)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach our 0700 temp dirs
        # as Debian's /etc/nginx/nginx.conf does: browsers refuse an ES module served as octet-stream
        mime = "include /etc/nginx/mime.types;" if os.path.exists("/etc/nginx/mime.types") else ""
        conf = (
            "%(user)sworker_processes 1;\n"
            "error_log %(p)s/error.log info;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    %(mime)s\n"
            "    default_type application/octet-stream;\n"
            "    access_log %(p)s/access.log;\n"
            "    client_body_temp_path %(p)s/tmp_body;\n"
            "    proxy_temp_path %(p)s/tmp_proxy;\n"
            "    fastcgi_temp_path %(p)s/tmp_fastcgi;\n"
            "    uwsgi_temp_path %(p)s/tmp_uwsgi;\n"
            "    scgi_temp_path %(p)s/tmp_scgi;\n"
            "    include %(site)s;\n"
            "}\n" % {"user": user, "p": p, "site": self.site_path, "mime": mime})
        self.conf_path = os.path.join(p, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def _start(self, port):
        """Start and wait until the port accepts; False if the port was taken (retry)."""
        self.check_config()
        argv = [self.exe, "-p", self.prefix + "/", "-c", self.conf_path, "-e", self.error_log,
                "-g", "daemon off; pid %s/nginx.pid;" % self.prefix]
        out = open(os.path.join(self.prefix, "stderr.log"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "Address already in use" in self.log():
                    return False
                raise AssertionError("nginx exited %r at start:\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx not accepting on %s:%d within 10 s:\n%s" % (HOST, port, self.log()))

    def check_config(self):
        r = subprocess.run([self.exe, "-t", "-q", "-p", self.prefix + "/", "-c", self.conf_path,
                            "-e", self.error_log, "-g", "pid %s/nginx.pid;" % self.prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        assert r.returncode == 0, "nginx -t refused the config:\n%s\n--- site.conf:\n%s" % (
            r.stdout.decode(errors="replace"), open(self.site_path).read())

    def log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.prefix, name), errors="replace") as f:
                    text += "--- nginx %s\n%s" % (name, f.read()[-6000:])
            except OSError:
                pass
        return text

    def client(self, timeout=5.0, **kw):
        return ProxyClient(HOST, self.port, timeout=timeout, **kw)

    def http_get(self, path, **kw):
        return http_request(HOST, self.port, path, **kw)

    def stop(self):
        """Fast shutdown (SIGTERM: upgraded connections would hold a graceful one); kill after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: master and its workers
            self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode


# ---------------------------------------------------------------------------------------- parleyd on a Unix socket


class UnixServer(Server):
    """A parleyd reached through its Unix socket; ready when the socket accepts a connection."""

    def __init__(self, argv, data_dir, log_path, unix_path, tcp_expected):
        self.unix_path = unix_path
        self.tcp_expected = tcp_expected
        super().__init__(argv, data_dir, log_path)

    def _wait_listening(self, timeout):
        if self.tcp_expected:
            super()._wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("parleyd exited with %r before listening:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(1)
                s.connect(self.unix_path)
                s.close()
                return
            except OSError:
                s.close()
                time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError("Unix socket %s not accepting within %.0fs:\n%s"
                             % (self.unix_path, timeout, self.log()))

    def unix_client(self, name=None, timeout=5.0):
        c = ProxyClient("localhost", 0, timeout=timeout, unix_path=self.unix_path)
        self.clients.append(c)
        if name is not None:
            c.hello(name)
        return c

    def unix_http_get(self, path, timeout=5.0):
        return http_request("localhost", 0, path, timeout=timeout, unix_path=self.unix_path)


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def nginx(request, tmp_data_root):
    """Factory: nginx(upstream, web_root=None, admin=None) -> Nginx running the shipped
    deploy/nginx.conf (admin: parleyd's admin listener, for /metrics)."""
    started = []

    def start(upstream, web_root=None, admin=None):
        prefix = os.path.join(tmp_data_root, "nginx%d" % len(started))
        os.makedirs(prefix)
        n = Nginx(prefix, lambda port: deploy_site(upstream, port, prefix, web_root, admin))
        started.append(n)
        return n

    yield start

    problems = []
    for n in started:
        rc = n.stop()
        if rc not in (0, None):
            problems.append("nginx exited %r after SIGTERM" % (rc,))
    if call_failed(request) or problems:
        for i, n in enumerate(started):
            sys.stderr.write("----- nginx[%d] site.conf\n%s\n%s\n"
                             % (i, open(n.site_path).read(), n.log()))
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def parley_unix(request, tmp_data_root):
    """Factory: parley_unix(sock_path, *flags) -> UnixServer. With "--no-tcp", "1" in flags no TCP
    port is awaited. Teardown as conftest's `parley`: SIGTERM, exit 0 within 10 s, no sanitizer report."""
    exe = parleyd_path()
    servers = []

    def start(sock_path, *flags):
        flags = [str(f) for f in flags]
        n = len(servers)
        data_dir = os.path.join(tmp_data_root, "udata%d" % n)
        log_path = os.path.join(tmp_data_root, "parleyd-unix%d.log" % n)
        argv = parleyd_argv(exe, data_dir) + ["--unix-socket", sock_path] + flags
        no_tcp = any(flags[i] == "--no-tcp" and flags[i + 1] == "1" for i in range(len(flags) - 1))
        srv = UnixServer(argv, data_dir, log_path, sock_path, tcp_expected=not no_tcp)
        servers.append(srv)
        return srv

    yield start

    finish_servers(servers, request, "parleyd-unix")
