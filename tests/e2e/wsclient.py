"""Minimal raw RFC 6455 client for Parley end-to-end tests.

Blocking sockets with timeouts, no third-party packages. It gives full control over what goes on the
wire (masked frames, fragmentation, raw bytes) so tests can send malformed input on purpose.

Reading returns whole messages (fragments reassembled). A close frame is surfaced as a `Close` object
(from `recv_message`) or as a `WSClosed` exception (from `recv_json`), carrying the code and reason.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


class HandshakeError(Exception):
    """The server did not answer the upgrade with 101 (status and headers attached)."""

    def __init__(self, status, headers, body=b""):
        super().__init__("handshake refused: status %r" % (status,))
        self.status = status
        self.headers = headers
        self.body = body


class WSClosed(Exception):
    """The server sent a close frame (code/reason) or dropped the TCP connection (code None)."""

    def __init__(self, code, reason=""):
        super().__init__("connection closed: code=%r reason=%r" % (code, reason))
        self.code = code
        self.reason = reason


class Close:
    """A received close frame. code is None when the frame had no payload or the socket hit EOF."""

    def __init__(self, code, reason, eof=False):
        self.code = code
        self.reason = reason
        self.eof = eof

    def __repr__(self):
        return "Close(code=%r, reason=%r, eof=%r)" % (self.code, self.reason, self.eof)


class Message:
    """A received data message: opcode OP_TEXT or OP_BINARY, payload bytes."""

    def __init__(self, opcode, payload):
        self.opcode = opcode
        self.payload = payload

    @property
    def text(self):
        return self.payload.decode("utf-8")

    def __repr__(self):
        return "Message(opcode=%d, payload=%r)" % (self.opcode, self.payload[:200])


def encode_frame(opcode, payload, fin=True, mask=True, rsv=0, mask_key=None):
    """Build one frame. Client frames must be masked; mask=False exists to send protocol violations."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + _mask(key, payload)


def _mask(key, data):
    # XOR with the 4-byte key, done on big integers so megabyte payloads stay fast.
    if not data:
        return b""
    n = len(data)
    reps = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(reps, "little")).to_bytes(n, "little")


class WSClient:
    """One WebSocket connection to parleyd.

    host/port: server; path: request path ("/ws"); timeout: default seconds for every blocking read;
    rcvbuf: if set, SO_RCVBUF is applied before connect (to keep the kernel from absorbing much data).
    """

    def __init__(self, host, port, path="/ws", timeout=5.0, rcvbuf=None, connect=True):
        self.host = host
        self.port = port
        self.path = path
        self.timeout = timeout
        self.rcvbuf = rcvbuf
        self.sock = None
        self.buf = bytearray()
        self.closed = None  # Close once a close frame or EOF was seen
        self.response_headers = {}
        if connect:
            self.connect()

    # ---------------------------------------------------------------- connection

    def connect(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        if self.rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self._handshake()

    def _handshake(self):
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            "GET %s HTTP/1.1\r\n"
            "Host: %s:%d\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n" % (self.path, self.host, self.port, key)
        )
        self.sock.sendall(req.encode())
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise HandshakeError(None, {}, bytes(self.buf))
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        self.response_headers = headers
        if status != 101:
            raise HandshakeError(status, headers, bytes(self.buf))
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise HandshakeError(status, headers)

    def _fill(self, deadline):
        """Read more bytes into buf. Returns False on EOF; raises socket.timeout past deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read timed out")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def close_socket(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    # ---------------------------------------------------------------- sending

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload, fin=True, mask=True, rsv=0):
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_json(self, obj):
        self.send_text(json.dumps(obj, separators=(",", ":")))

    def send_fragmented(self, payload, parts=3, opcode=OP_TEXT):
        """Send one message split into `parts` frames: first with opcode, then continuation frames."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        n = len(payload)
        cuts = [n * i // parts for i in range(parts + 1)]
        data = b""
        for i in range(parts):
            op = opcode if i == 0 else OP_CONT
            data += encode_frame(op, payload[cuts[i]:cuts[i + 1]], fin=(i == parts - 1))
        self.sock.sendall(data)

    def send_ping(self, payload=b""):
        self.send_frame(OP_PING, payload)

    def send_close(self, code=1000, reason=""):
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode("utf-8")
        self.send_frame(OP_CLOSE, payload)

    # ---------------------------------------------------------------- receiving

    def recv_frame(self, timeout=None):
        """Read one raw frame: returns (fin, opcode, payload). EOF gives (True, None, b"")."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            hdr = self._parse_frame()
            if hdr is not None:
                return hdr
            if not self._fill(deadline):
                return (True, None, b"")

    def _parse_frame(self):
        b = self.buf
        if len(b) < 2:
            return None
        fin = bool(b[0] & 0x80)
        opcode = b[0] & 0x0F
        masked = bool(b[1] & 0x80)
        n = b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack_from("!H", b, 2)[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack_from("!Q", b, 2)[0]
            pos = 10
        key = None
        if masked:  # servers must not mask; tolerate it so tests can assert on it if needed
            if len(b) < pos + 4:
                return None
            key = bytes(b[pos:pos + 4])
            pos += 4
        if len(b) < pos + n:
            return None
        payload = bytes(b[pos:pos + n])
        del b[: pos + n]
        if key is not None:
            payload = _mask(key, payload)
        return (fin, opcode, payload)

    def recv_message(self, timeout=None):
        """Next data message or Close. Answers pings, skips pongs, reassembles fragments.

        Raises socket.timeout if nothing complete arrives within timeout (default self.timeout)."""
        if self.closed is not None:
            return self.closed
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        frag_op = None
        frag = bytearray()
        while True:
            left = max(0.0, deadline - time.monotonic())
            if left == 0.0:
                raise socket.timeout("no complete message in time")
            fin, op, payload = self.recv_frame(timeout=left)
            if op is None:
                self.closed = Close(None, "", eof=True)
                return self.closed
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                self.closed = Close(code, reason)
                return self.closed
            if op == OP_PING:
                try:
                    self.send_frame(OP_PONG, payload)
                except OSError:
                    pass
                continue
            if op == OP_PONG:
                continue
            if op == OP_CONT:
                frag += payload
                if fin:
                    m = Message(frag_op, bytes(frag))
                    return m
                continue
            if fin:
                return Message(op, payload)
            frag_op = op
            frag = bytearray(payload)

    def recv_json(self, timeout=None):
        """Next text message parsed as JSON. Raises WSClosed on close, AssertionError on binary."""
        m = self.recv_message(timeout)
        if isinstance(m, Close):
            raise WSClosed(m.code, m.reason)
        assert m.opcode == OP_TEXT, "server sent a non-text message: %r" % (m,)
        return json.loads(m.payload.decode("utf-8"))

    def recv_close(self, timeout=None, max_messages=1000000):
        """Read (and discard) messages until a close frame or EOF; returns (Close, messages_skipped)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        skipped = 0
        while skipped <= max_messages:
            m = self.recv_message(timeout=max(0.001, deadline - time.monotonic()))
            if isinstance(m, Close):
                return m, skipped
            skipped += 1
        raise AssertionError("no close after %d messages" % skipped)

    def expect_silence(self, seconds):
        """Assert that no message arrives within `seconds`. Returns nothing; raises AssertionError."""
        try:
            m = self.recv_message(timeout=seconds)
        except socket.timeout:
            return
        raise AssertionError("expected no frame, got %r" % (m,))
