#!/usr/bin/env python3
"""Server memory per idle Engine.IO long-polling session (docs/benchmarks.md, idle-memory table).

Opens SESSIONS polling sessions on parleyd's /socket.io/ as socket.io-client leaves them when idle:
handshake GET, CONNECT (POST 40), the GET that takes the CONNECT answer and the welcome, then one
GET that the server holds. Each session keeps its own keep-alive HTTP connection. Reads the server's
VmRSS (/proc/PID/status) before and after and prints JSON:
  {"sessions": N, "server_rss_kib_before": .., "server_rss_kib_after": .., "server_rss_bytes_per_session": ..}

Usage: idle_polling.py --port PORT --pid SERVER_PID [--host 127.0.0.1] [--sessions 2000]
"""
import argparse
import json
import resource
import socket
import sys
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def request(sock, method, query, body=b""):
    head = "%s /socket.io/?%s HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n" % (method, query)
    if method == "POST":
        head += "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n" % len(body)
    sock.sendall(head.encode() + b"\r\n" + body)


def response(sock, buf):
    """Reads one response with a Content-Length; returns (body, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(buf) < n:
        d = sock.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        buf += d
    if status != 200:
        raise RuntimeError("HTTP %d: %r" % (status, buf[:n]))
    return buf[:n], buf[n:]


def open_session(host, port):
    s = socket.create_connection((host, port))
    request(s, "GET", "EIO=4&transport=polling")
    body, rest = response(s, b"")
    sid = json.loads(body[1:])["sid"]
    q = "EIO=4&transport=polling&sid=" + sid
    request(s, "POST", q, b"40")
    _, rest = response(s, rest)
    got = b""
    while b'42["welcome"' not in got:
        request(s, "GET", q)
        body, rest = response(s, rest)
        got += body
    request(s, "GET", q)  # held: the session's idle state
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=2000)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.sessions + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.sessions + 64), hard))
    # one session first: the loop's buffers and lws's pools exist before the baseline
    keep = [open_session(a.host, a.port)]
    time.sleep(0.5)
    before = rss_kib(a.pid)
    for _ in range(a.sessions):
        keep.append(open_session(a.host, a.port))
    time.sleep(1.0)
    after = rss_kib(a.pid)
    json.dump({"sessions": a.sessions, "server_rss_kib_before": before, "server_rss_kib_after": after,
               "server_rss_bytes_per_session": round((after - before) * 1024 / a.sessions)}, sys.stdout)
    print()
    for s in keep:
        s.close()


if __name__ == "__main__":
    main()
