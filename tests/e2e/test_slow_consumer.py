"""Slow consumer: a member that stops reading is closed with 4008; the room and publisher carry on."""

import socket
import threading
import time

from wsclient import Close

LIMITS = ("--send-queue-bytes", "65536", "--send-queue-messages", "100", "--max-message-size", "32768")
MSG_DATA = 8000           # bytes of payload per message
TOTAL_BYTES = 20 * 2 ** 20  # bounded: 20 MB published in all
COUNT = TOTAL_BYTES // MSG_DATA
WINDOW = 4                # publishes in flight (the reader must keep up; it shares our GIL)


def test_stalled_member_is_closed_4008_while_room_and_publisher_carry_on(parley):
    s = parley(*LIMITS)
    pub = s.client("pub", timeout=30)
    reader = s.client("reader", timeout=30)
    # A tiny receive buffer so the kernel absorbs little on the stalled side.
    stalled = s.client("stalled", timeout=30, rcvbuf=4096)
    for c in (pub, reader, stalled):
        c.join("r")
    # stalled stops reading from here on.

    received, problems = [], []

    def read_all():
        try:
            while len(received) < COUNT:
                m = reader.next_json(timeout=30)
                if m.get("type") != "message":
                    problems.append(m)
                    continue
                received.append((m["seq"], m["data"]["i"], len(m["data"]["pad"])))
        except Exception as e:  # reported by the main thread
            problems.append(repr(e))

    t = threading.Thread(target=read_all, daemon=True)
    t.start()

    deadline = time.monotonic() + 240
    pad = "p" * MSG_DATA
    pending, seqs = [], []
    for i in range(COUNT):
        pending.append(pub.send_cmd("publish", room="r", data={"i": i, "pad": pad}, echo=False))
        if len(pending) >= WINDOW:
            r = pub.wait_reply(pending.pop(0))
            assert r["ok"] is True, r
            seqs.append(r["data"]["seq"])
        assert time.monotonic() < deadline, "publishing took too long (%d of %d)" % (i, COUNT)
    for cid in pending:
        r = pub.wait_reply(cid)
        assert r["ok"] is True, r
        seqs.append(r["data"]["seq"])

    t.join(timeout=max(1, deadline - time.monotonic()))
    assert not t.is_alive(), "reader got only %d of %d messages" % (len(received), COUNT)
    assert problems == []
    assert len(seqs) == COUNT and seqs == list(range(seqs[0], seqs[0] + COUNT))
    assert [x[0] for x in received] == seqs, "reader missed or reordered messages"
    assert [x[1] for x in received] == list(range(COUNT))
    assert all(x[2] == MSG_DATA for x in received)

    # Now the stalled client drains what the kernel held and must find the 4008 close.
    got = 0
    while True:
        try:
            m = stalled.recv_message(timeout=20)
        except socket.timeout:
            raise AssertionError("stalled client: no close after %d messages" % got)
        if isinstance(m, Close):
            break
        got += 1
        assert got <= COUNT
    assert m.code == 4008, "stalled client closed with %r after %d messages, want 4008" % (m, got)
    assert got < COUNT, "stalled client received everything: it was never cut off"

    # The publisher and the room carry on.
    assert pub.ok("publish", room="r", data="after", echo=False)["seq"] == seqs[-1] + 1
    assert reader.next_json()["data"] == "after"


def test_stalled_member_is_removed_from_room(parley):
    s = parley(*LIMITS)
    pub = s.client("pub", timeout=30)
    stalled = s.client("stalled", timeout=30, rcvbuf=4096)
    pub.join("r")
    stalled.join("r")
    pad = "p" * MSG_DATA
    deadline = time.monotonic() + 120
    # Publish until the server drops the stalled user from the room (bounded by COUNT and time).
    for i in range(COUNT):
        pub.ok("publish", room="r", data={"i": i, "pad": pad}, echo=False)
        if i % 50 == 49:
            members = pub.ok("presence", room="r")["members"]
            if [m["user"] for m in members] == ["pub"]:
                break
        assert time.monotonic() < deadline
    else:
        raise AssertionError("stalled member still in the room after %d messages" % COUNT)
    close, _ = stalled.recv_close(timeout=20)
    assert close.code == 4008


def test_stalled_member_past_message_count_limit_is_closed_4008(parley):
    # Byte limit generous, message limit small: the count alone must trigger the close.
    s = parley("--send-queue-messages", "100", "--send-queue-bytes", "16777216")
    pub = s.client("pub", timeout=30)
    stalled = s.client("stalled", timeout=30, rcvbuf=4096)
    pub.join("r")
    stalled.join("r")
    deadline = time.monotonic() + 120
    window, pending, sent = 64, [], 0
    cut_off = False
    while sent < 60000 and not cut_off:  # ~100-byte frames: at most ~6 MB, bounded
        pending.append(pub.send_cmd("publish", room="r", data=sent, echo=False))
        sent += 1
        if len(pending) >= window:
            r = pub.wait_reply(pending.pop(0))
            assert r["ok"] is True, r
        if sent % 2000 == 0:
            for cid in pending:
                assert pub.wait_reply(cid)["ok"] is True
            pending = []
            members = pub.ok("presence", room="r")["members"]
            cut_off = [m["user"] for m in members] == ["pub"]
        assert time.monotonic() < deadline
    for cid in pending:
        assert pub.wait_reply(cid)["ok"] is True
    assert cut_off, "stalled member still in the room after %d small messages" % sent
    close, skipped = stalled.recv_close(timeout=20)
    assert close.code == 4008, close
    assert skipped < sent


def test_presence_subscribers_see_the_cut_off_member_leave(parley):
    s = parley(*LIMITS, "--presence-window-ms", "100")
    pub = s.client("pub", timeout=30)
    watcher = s.client("watcher", timeout=30)
    stalled = s.client("stalled", timeout=30, rcvbuf=4096)
    pub.join("r")
    stalled.join("r")
    watcher.join("r2", presence=True)
    stalled.join("r2")
    pad = "p" * MSG_DATA
    deadline = time.monotonic() + 120
    left = []
    for i in range(COUNT):
        pub.ok("publish", room="r", data={"i": i, "pad": pad}, echo=False)
        if i % 50 == 49:
            try:
                while True:
                    f = watcher.recv_json(timeout=0.01)
                    if f.get("type") == "presence":
                        left += f["left"]
            except socket.timeout:
                pass
            if "stalled" in left:
                break
        assert time.monotonic() < deadline
    assert "stalled" in left, "room r2 never saw the cut-off member leave"
