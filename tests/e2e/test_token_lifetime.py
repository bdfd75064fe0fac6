"""Token lifetime: a connection authenticated with a token closes with 4001 "token expired" at the
token's exp plus token_grace, unless it sends `refresh` with a newer token for the same user."""

import os
import time

import pytest

from test_auth import SECRET, claims, closed_with, token

GRACE = 1


@pytest.fixture
def tsrv(parley, tmp_path):
    p = tmp_path / "secret"
    p.write_bytes(SECRET + b"\n")
    os.chmod(p, 0o400)
    return parley("--auth", "token", "--auth-secret-file", str(p), "--token-grace", str(GRACE))


def exp_in(seconds):
    """An exp at least `seconds` away (exp is whole seconds)."""
    return int(time.time()) + seconds + 1


def wait_close_at(c, deadline_wall):
    """The connection stays open until deadline_wall (less 0.3 s of slack), then closes with 4001."""
    try:
        early = deadline_wall - 0.3 - time.time()
        if early > 0:
            c.expect_silence(early)
        close = closed_with(c, 4001, timeout=deadline_wall + 2.0 - time.time())
    except AssertionError:
        raise
    at = time.time()
    assert close.reason == "token expired", close
    assert deadline_wall - 0.3 <= at <= deadline_wall + 1.5, (at, deadline_wall)


def test_expired_token_closes_4001_at_exp_plus_grace(tsrv):
    exp = exp_in(2)
    c = tsrv.client()
    assert c.ok("hello", token=token({"sub": "alice", "exp": exp})) == {"user": "alice"}
    c.join("lobby")
    wait_close_at(c, exp + GRACE)
    assert "msg=token_expired" in tsrv.log()


def test_query_string_token_expires_too(tsrv):
    exp = exp_in(2)
    c = tsrv.client(path="/ws?token=" + token({"sub": "bob", "exp": exp}))
    wait_close_at(c, exp + GRACE)


def test_refresh_extends_the_connection(tsrv):
    exp = exp_in(2)
    c = tsrv.client()
    c.ok("hello", token=token({"sub": "alice", "exp": exp}))
    c.join("lobby")
    later = exp_in(30)
    assert c.ok("refresh", token=token({"sub": "alice", "exp": later})) == {"user": "alice", "exp": later}
    # well past the first token's exp + grace: still open, still a member
    time.sleep(max(0, exp + GRACE + 1.0 - time.time()))
    assert c.ok("ping")
    c.ok("publish", room="lobby", data="still here", skip=True)


def test_refresh_moves_the_deadline_both_ways(tsrv):
    c = tsrv.client()
    c.ok("hello", token=token(claims("alice", ttl=300)))
    exp = exp_in(2)
    c.ok("refresh", token=token({"sub": "alice", "exp": exp}))
    wait_close_at(c, exp + GRACE)


def test_refresh_with_another_sub_is_refused_and_the_old_deadline_holds(tsrv):
    exp = exp_in(2)
    c = tsrv.client()
    c.ok("hello", token=token({"sub": "alice", "exp": exp}))
    assert c.err("refresh", token=token(claims("mallory", ttl=300))) == "forbidden"
    assert c.ok("ping")
    wait_close_at(c, exp + GRACE)


def test_refresh_with_a_bad_token_fails_and_keeps_the_connection(tsrv):
    c = tsrv.client()
    c.ok("hello", token=token(claims("alice", ttl=300)))
    assert c.err("refresh", token=token(claims("alice"), secret=b"x" * 40)) == "unauthenticated"
    assert c.err("refresh", token=token(claims("alice", ttl=-3600))) == "unauthenticated"
    assert c.err("refresh") == "bad_request"                # no token
    assert c.err("refresh", token=42) == "bad_request"
    assert c.ok("ping")
    c.join("lobby")


def test_refresh_before_authentication_is_refused(tsrv):
    c = tsrv.client()
    assert c.err("refresh", token=token(claims("alice"))) == "unauthenticated"


def test_refresh_without_token_auth_is_unsupported(parley):
    c = parley().client()
    assert c.err("refresh", token=token(claims("alice"))) == "unsupported"


def test_grace_zero_closes_at_exp(parley, tmp_path):
    p = tmp_path / "secret"
    p.write_bytes(SECRET + b"\n")
    os.chmod(p, 0o400)
    s = parley("--auth", "token", "--auth-secret-file", str(p), "--token-grace", "0")
    exp = exp_in(1)
    c = s.client()
    c.ok("hello", token=token({"sub": "alice", "exp": exp}))
    wait_close_at(c, exp)
