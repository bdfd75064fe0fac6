"""Helpers shared by the test_storage_* files."""

import time


def publish_many(c, room, n, window=64, make=lambda i: {"i": i}, deadline_s=300, **fields):
    """Publish n messages (echo off) with up to `window` in flight; returns the list of seqs in order."""
    deadline = time.monotonic() + deadline_s
    pending, seqs = [], []
    for i in range(n):
        pending.append(c.send_cmd("publish", room=room, data=make(i), echo=False, **fields))
        if len(pending) >= window:
            r = c.wait_reply(pending.pop(0), skip=True)
            assert r["ok"] is True, r
            seqs.append(r["data"]["seq"])
            assert time.monotonic() < deadline, "publishing too slow (%d of %d)" % (i, n)
    for cid in pending:
        r = c.wait_reply(cid, skip=True)
        assert r["ok"] is True, r
        seqs.append(r["data"]["seq"])
    return seqs


def read_all_history(c, room, page=100):
    """Page backwards through the whole history of `room`; returns the messages oldest first."""
    out = []
    before = None
    for _ in range(100000):
        fields = {"room": room, "limit": page}
        if before is not None:
            fields["before"] = before
        d = c.ok("history", **fields)
        msgs = d["messages"]
        assert len(msgs) <= page
        out = msgs + out
        if not d["more"]:
            return out
        assert msgs, "more:true with an empty page"
        before = msgs[0]["seq"]
    raise AssertionError("history paging did not end")
