"""auth = token: HS256 tokens in hello or ?token=, 4001 on failure, room rights from the token."""

import base64
import hashlib
import hmac
import json
import os
import time

import pytest

from wsclient import WSClosed

SECRET = b"an-e2e-test-secret-that-is-long-enough-0123456789"
OLD_SECRET = b"the-previous-secret-still-valid-during-rotation-42"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(claims, secret=SECRET, header=None, sig=None):
    h = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + (sig if sig is not None else b64(mac))


def claims(sub="alice", ttl=300, **extra):
    c = {"sub": sub, "exp": int(time.time()) + ttl}
    c.update(extra)
    return c


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "secret"
    p.write_bytes(SECRET + b"\n")
    os.chmod(p, 0o400)
    return str(p)


@pytest.fixture
def asrv(parley, secret_file):
    return parley("--auth", "token", "--auth-secret-file", secret_file, "--auth-timeout", "2")


def closed_with(c, code, timeout=5):
    close, _ = c.recv_close(timeout=timeout)
    assert close.code == code, close
    return close


def test_hello_with_valid_token_names_the_user(asrv):
    c = asrv.client()
    assert c.user.startswith("guest-")
    assert c.ok("hello", token=token(claims("alice"))) == {"user": "alice"}
    assert c.join("lobby")["members"] == 1


def test_token_in_query_string(asrv):
    c = asrv.client(path="/ws?token=" + token(claims("bob")))
    assert c.ok("ping")
    c.join("lobby")
    c.ok("publish", room="lobby", data=1, skip=True)
    msg = c.backlog.pop(0)
    assert msg["type"] == "message" and msg["from"] == "bob"


def test_commands_before_authentication_are_refused(asrv):
    c = asrv.client()
    assert c.ok("ping")  # ping works
    assert c.err("join", room="lobby") == "unauthenticated"
    assert c.err("hello", name="mallory") == "unauthenticated"  # no renaming into a user


def test_no_authentication_within_timeout_closes_4001(asrv):
    c = asrv.client()
    close = closed_with(c, 4001, timeout=6)
    assert "timeout" in close.reason


@pytest.mark.parametrize("case", ["expired", "not_yet_valid", "bad_signature", "alg_none", "alg_hs512",
                                  "missing_exp", "missing_sub", "bad_sub", "garbage", "other_secret"])
def test_bad_tokens_close_4001_with_a_reason(asrv, case):
    now = int(time.time())
    tok = {
        "expired": lambda: token({"sub": "alice", "exp": now - 3600}),
        "not_yet_valid": lambda: token(claims(nbf=now + 3600)),
        "bad_signature": lambda: token(claims(), sig=b64(b"x" * 32)),
        "alg_none": lambda: token(claims(), header={"alg": "none", "typ": "JWT"}, sig=""),
        "alg_hs512": lambda: token(claims(), header={"alg": "HS512", "typ": "JWT"}),
        "missing_exp": lambda: token({"sub": "alice"}),
        "missing_sub": lambda: token({"exp": now + 300}),
        "bad_sub": lambda: token(claims(sub="a\u0001b")),
        "garbage": lambda: "not.a.token",
        "other_secret": lambda: token(claims(), secret=b"some-other-secret-of-sufficient-length-000"),
    }[case]()
    c = asrv.client()
    r = c.request("hello", token=tok)
    assert r["ok"] is False and r["error"]["code"] == "unauthenticated", r
    close = closed_with(c, 4001)
    assert close.reason, "4001 must say why"
    assert tok not in close.reason


def test_bad_token_in_query_string_closes_4001(asrv):
    c = asrv.client(path="/ws?token=" + token({"sub": "alice", "exp": 1}))
    closed_with(c, 4001)


def test_rooms_claim_limits_join_and_publish(asrv):
    c = asrv.client()
    c.ok("hello", token=token(claims("carol", rooms={"join": ["lobby", "team-42:*"], "publish": ["team-42:*"]})))
    c.join("lobby")
    c.join("team-42:general")
    assert c.err("join", room="team-7:general") == "forbidden"
    assert c.err("publish", room="lobby", data=1) == "forbidden"
    assert c.ok("publish", room="team-42:general", data=1, echo=False)["seq"] == 1


def test_private_rooms_belong_to_their_user(asrv):
    a = asrv.client()
    a.ok("hello", token=token(claims("alice")))
    b = asrv.client()
    b.ok("hello", token=token(claims("bob")))
    a.join("@alice")
    assert b.err("join", room="@alice") == "forbidden"
    assert b.err("join", room="@alice:inbox") == "forbidden"
    # the DM room of alice and bob: names sorted bytewise
    a.join("@dm:alice:bob")
    b.join("@dm:alice:bob")
    m = asrv.client()
    m.ok("hello", token=token(claims("mallory")))
    assert m.err("join", room="@dm:alice:bob") == "forbidden"


def test_token_refresh_must_keep_the_user(asrv):
    c = asrv.client()
    c.ok("hello", token=token(claims("alice")))
    assert c.ok("hello", token=token(claims("alice", ttl=600))) == {"user": "alice"}
    assert c.err("hello", token=token(claims("bob"))) == "forbidden"


def test_rotation_two_secrets_and_sighup(parley, tmp_path):
    import signal
    p = tmp_path / "secret"
    p.write_bytes(OLD_SECRET + b"\n")
    s = parley("--auth", "token", "--auth-secret-file", str(p))
    c = s.client()
    c.ok("hello", token=token(claims("alice"), secret=OLD_SECRET))
    # rotate: new secret first, old one second; both verify after SIGHUP
    p.write_bytes(SECRET + b"\n" + OLD_SECRET + b"\n")
    s.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "auth_reload=ok" not in s.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "auth_reload=ok" in s.log()
    for sec in (SECRET, OLD_SECRET):
        c2 = s.client()
        assert c2.ok("hello", token=token(claims("bob"), secret=sec)) == {"user": "bob"}
    # the old secret retired
    p.write_bytes(SECRET + b"\n")
    s.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    c3 = s.client()
    r = c3.request("hello", token=token(claims("bob"), secret=OLD_SECRET))
    assert r["ok"] is False
    closed_with(c3, 4001)


def test_short_secret_refuses_to_start(parley, tmp_path):
    p = tmp_path / "secret"
    p.write_bytes(b"short\n")
    with pytest.raises(Exception):
        parley("--auth", "token", "--auth-secret-file", str(p))


def test_auth_none_keeps_private_rooms_private(parley):
    s = parley()
    a = s.client("alice")
    a.join("@alice")
    b = s.client("bob")
    assert b.err("join", room="@alice") == "forbidden"
    # alice cannot rename herself out of her own private room while in it
    assert a.err("hello", name="carol") == "forbidden"


def test_hello_with_token_ignores_name_even_an_invalid_one(asrv):
    # protocol.md §5.1: with a token, `name` is ignored, whatever it holds.
    c = asrv.client()
    assert c.ok("hello", token=token(claims("alice")), name="")["user"] == "alice"
    d = asrv.client()
    assert d.ok("hello", token=token(claims("bob")), name="x" * 200)["user"] == "bob"
    e = asrv.client()
    assert e.err("hello", token=token(claims("carol")), name=42) == "bad_request"  # still a string
