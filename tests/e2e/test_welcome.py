"""Welcome frame and command-line basics."""

import re
import subprocess

from conftest import parleyd_path

DEFAULT_LIMITS = {
    "max_message_size": 65536,
    "max_rooms": 128,
    "max_name_length": 32,
    "max_room_length": 128,
    "send_queue_messages": 1000,
    "send_queue_bytes": 1048576,
    "presence_window_ms": 100,
    "history_page": 100,
}


def test_welcome_is_first_frame_with_type_welcome(srv):
    c = srv.client()
    assert c.welcome["type"] == "welcome"


def test_welcome_session_is_16_hex(srv):
    c = srv.client()
    assert re.fullmatch(r"[0-9a-f]{16}", c.welcome["session"]), c.welcome


def test_welcome_user_is_guest_8_hex(srv):
    c = srv.client()
    assert re.fullmatch(r"guest-[0-9a-f]{16}", c.welcome["user"]), c.welcome


def test_welcome_server_is_parley_0_1_0(srv):
    c = srv.client()
    assert c.welcome["server"] == "parley/0.1.0"


def test_welcome_limits_are_the_defaults(srv):
    c = srv.client()
    assert c.welcome["limits"] == DEFAULT_LIMITS


def test_welcome_limits_reflect_command_line(parley):
    s = parley("--max-message-size", "1024", "--max-rooms", "3", "--send-queue-messages", "50",
               "--send-queue-bytes", "65536", "--presence-window-ms", "300")
    lim = s.client().welcome["limits"]
    assert lim["max_message_size"] == 1024
    assert lim["max_rooms"] == 3
    assert lim["send_queue_messages"] == 50
    assert lim["send_queue_bytes"] == 65536
    assert lim["presence_window_ms"] == 300


def test_two_connections_get_distinct_sessions_and_guest_names(srv):
    a, b = srv.client(), srv.client()
    assert a.welcome["session"] != b.welcome["session"]
    assert a.welcome["user"] != b.welcome["user"]


def test_nothing_follows_welcome_unasked(srv):
    c = srv.client()
    c.assert_nothing_pending(0.3)


def test_help_exits_0_and_prints_usage():
    p = subprocess.run([parleyd_path(), "--help"], capture_output=True, timeout=10)
    assert p.returncode == 0
    out = (p.stdout + p.stderr).decode()
    assert "--port" in out and "--data-dir" in out


def test_short_help_exits_0():
    p = subprocess.run([parleyd_path(), "-h"], capture_output=True, timeout=10)
    assert p.returncode == 0


def test_version_prints_parleyd_0_1_0_and_exits_0():
    p = subprocess.run([parleyd_path(), "--version"], capture_output=True, timeout=10)
    assert p.returncode == 0
    assert p.stdout.decode().strip() == "parleyd 0.1.0"


def test_short_version_exits_0():
    p = subprocess.run([parleyd_path(), "-V"], capture_output=True, timeout=10)
    assert p.returncode == 0
    assert p.stdout.decode().strip() == "parleyd 0.1.0"


def test_unknown_option_exits_nonzero():
    p = subprocess.run([parleyd_path(), "--no-such-option"], capture_output=True, timeout=10)
    assert p.returncode != 0


def test_every_log_line_is_logfmt_with_ts_level_msg(parley):
    s = parley()
    a = s.client("alice")
    a.join("r")
    a.ok("publish", room="r", data=1, echo=False)
    a.send_binary(b"x")  # provoke a close and whatever it logs
    a.recv_close(timeout=5)
    assert s.stop() == 0
    lines = [l for l in s.log().splitlines() if l.strip()]
    assert lines
    pat = re.compile(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warn|error) msg=\S+( |$)")
    bad = [l for l in lines if not pat.match(l)]
    assert bad == [], bad[:5]
