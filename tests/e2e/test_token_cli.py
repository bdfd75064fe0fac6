"""parleyd token / parleyd check-token: a token made by the CLI is accepted by a running parleyd with the
same claims; expired, other-secret and malformed tokens are refused and explained (exit 1)."""

import base64
import json
import subprocess
import time

import pytest

from conftest import parleyd_path
from wsclient import WSClosed  # noqa: F401

SECRET = b"a-token-cli-test-secret-long-enough-0123456789"
OTHER = b"another-secret-entirely-and-long-enough-98765"


def run(*args, stdin=None):
    p = subprocess.run([parleyd_path()] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=20)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def secrets(tmp_path):
    a, b = tmp_path / "secret", tmp_path / "other"
    a.write_bytes(SECRET + b"\n")
    b.write_bytes(OTHER + b"\n")
    return str(a), str(b)


def payload(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def make(secret, *extra):
    rc, out, err = run("token", "--secret-file", secret, *extra)
    assert rc == 0, err
    tok = out.strip()
    assert tok.count(".") == 2 and "\n" not in tok
    return tok


def test_token_has_the_claims_asked_for(secrets):
    tok = make(secrets[0], "--sub", "alice", "--rooms", "team-42:*,lobby", "--ttl", "1h")
    c = payload(tok)
    assert c["sub"] == "alice"
    assert c["rooms"] == {"join": ["team-42:*", "lobby"], "publish": ["team-42:*", "lobby"]}
    assert abs(c["exp"] - c["iat"] - 3600) == 0 and abs(c["iat"] - time.time()) < 5
    assert "mod" not in c
    assert payload(make(secrets[0], "--sub", "bob", "--ttl", "90"))["exp"] - time.time() < 95
    c = payload(make(secrets[0], "--sub", "m", "--mod", "--join", "a", "--publish", "b"))
    assert c["mod"] is True and c["rooms"] == {"join": ["a", "b"], "publish": ["b"]}


def test_cli_token_is_accepted_by_a_running_parleyd(parley, secrets):
    srv = parley("--auth", "token", "--auth-secret-file", secrets[0])
    tok = make(secrets[0], "--sub", "alice", "--rooms", "team-42:*")
    c = srv.client()
    assert c.ok("hello", token=tok) == {"user": "alice"}
    c.join("team-42:general")
    assert c.err("join", room="elsewhere") == "forbidden"
    # A token made with another secret is refused by the server and by check-token.
    bad = make(secrets[1], "--sub", "alice")
    c2 = srv.client()
    assert c2.err("hello", token=bad) == "unauthenticated"
    rc, out, _ = run("check-token", "--secret-file", secrets[0], bad)
    assert rc == 1 and "invalid: bad signature" in out


def test_check_token_explains_a_valid_token(secrets):
    tok = make(secrets[0], "--sub", "alice", "--rooms", "team-42:*", "--ttl", "2h", "--mod")
    rc, out, err = run("check-token", "--secret-file", secrets[0], tok)
    assert rc == 0, out + err
    assert "user      alice" in out
    assert "join      team-42:*" in out and "publish   team-42:*" in out
    assert "moderator yes" in out
    assert "expires" in out and ("(in 1h 59m" in out or "(in 2h 0m" in out)
    assert out.strip().splitlines()[-1].startswith("valid:")
    rc, out, _ = run("check-token", "--secret-file", secrets[0], "-", stdin=tok + "\n")
    assert rc == 0 and "user      alice" in out


def test_check_token_refuses_expired_and_malformed(secrets, tmp_path):
    # An expired token: made with a 1 s lifetime, checked after the 30 s leeway would be too slow,
    # so forge one with the same secret through the CLI's own claims (iat/exp in the past).
    import hashlib
    import hmac

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    h = b64(b'{"alg":"HS256","typ":"JWT"}')
    p = b64(json.dumps({"sub": "alice", "exp": int(time.time()) - 3600}).encode())
    sig = b64(hmac.new(SECRET, (h + "." + p).encode(), hashlib.sha256).digest())
    rc, out, _ = run("check-token", "--secret-file", secrets[0], h + "." + p + "." + sig)
    assert rc == 1 and "invalid: token expired (expired)" in out
    assert '"sub": "alice"' in out   # the claims are still shown, as unverified
    rc, out, _ = run("check-token", "--secret-file", secrets[0], "not-a-token")
    assert rc == 1 and "invalid:" in out
    rc, _, err = run("check-token", "--secret-file", str(tmp_path / "missing"), "x.y.z")
    assert rc == 2 and "missing" in err
    rc, _, err = run("check-token", "x.y.z")
    assert rc == 2 and "--secret-file" in err


def test_token_refuses_bad_input(secrets, tmp_path):
    assert run("token", "--secret-file", secrets[0])[0] == 2                    # no --sub
    assert run("token", "--secret-file", secrets[0], "--sub", "a", "--ttl", "1w")[0] == 2
    assert run("token", "--secret-file", secrets[0], "--sub", "a", "--ttl", "0")[0] == 2
    assert run("token", "--secret-file", secrets[0], "--sub", "a b\tc")[0] == 2  # control character
    rc, _, err = run("token", "--secret-file", secrets[0], "--sub", "a", "--rooms", "bad room")
    assert rc == 2 and "invalid room pattern" in err
    short = tmp_path / "short"
    short.write_bytes(b"too-short\n")
    rc, _, err = run("token", "--secret-file", str(short), "--sub", "a")
    assert rc == 2 and "32" in err
    assert run("token", "--bogus")[0] == 2
    rc, out, _ = run("token", "--help")
    assert rc == 0 and "--secret-file" in out
