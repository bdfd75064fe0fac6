"""GET /metrics: Prometheus text format, and counters that move exactly as the traffic says.

Deltas between two scrapes are compared, never absolute values, so whatever the scrape's own HTTP
connection does to the counters cancels out (where it might not, the check allows for it).
"""

import math
import re
import socket
import threading
import time

import pytest

from conftest import HOST
from nginxhelp import http_request
from wsclient import Close, HandshakeError, WSClient

GAUGES = ["parley_connections", "parley_rooms", "parley_store_queue_depth",
          "process_resident_memory_bytes", "process_open_fds"]
COUNTERS = ["parley_connections_total", "parley_messages_in_total", "parley_messages_out_total",
            "parley_bytes_in_total", "parley_bytes_out_total", "parley_published_total",
            "parley_deliveries_total", "parley_slow_consumer_closes_total",
            "parley_history_cache_hits_total", "parley_history_cache_misses_total"]
LABELLED_COUNTERS = {"parley_disconnects_total": "reason", "parley_errors_total": "code"}
HISTOGRAMS = ["parley_store_commit_seconds"]
NO_RATE_LIMIT = ("--rate-messages", "100000", "--rate-burst", "100000")  # these tests publish fast

LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$')
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class Metrics:
    """One parsed scrape: types {family: type}, samples {(name, ((label, value), ...)): float}."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    assert parts[2] not in self.types, "line %d: second TYPE for %s" % (n, parts[2])
                    self.types[parts[2]] = parts[3].strip()
                continue
            m = LINE_RE.match(line)
            assert m, "line %d is not Prometheus text format: %r" % (n, line)
            name, labels_text, value = m.groups()
            labels = ()
            if labels_text:
                found = LABEL_RE.findall(labels_text)
                assert found, "line %d: bad labels %r" % (n, labels_text)
                labels = tuple(sorted(found))
            key = (name, labels)
            assert key not in self.samples, "line %d: duplicate series %r" % (n, line)
            self.samples[key] = float(value)  # float() reads +Inf, -Inf, NaN too

    def value(self, name, **labels):
        """A series' value; 0 when it is absent (a labelled counter before its first event)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def has(self, name):
        return any(k[0] == name for k in self.samples)

    def family_sum(self, name):
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def type_of(self, family):
        # text format 0.0.4 names the counter family with its _total; accept the OpenMetrics style too
        return self.types.get(family) or self.types.get(re.sub(r"_total$", "", family))


def scrape(srv, nscrapes=None):
    status, hdrs, body = http_request(HOST, srv.admin_port, "/metrics")
    assert status == 200, (status, body[:300])
    if nscrapes is not None:
        nscrapes[0] += 1
    ctype = hdrs.get("content-type", "")
    assert ctype.startswith("text/plain"), "Prometheus text wants text/plain, got %r" % ctype
    return Metrics(body.decode("utf-8"))


def delta(m0, m1, name, **labels):
    return m1.value(name, **labels) - m0.value(name, **labels)


def wait_for(srv, pred, what, timeout=5.0):
    """Scrape until pred(metrics) is true (bounded); returns those metrics."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(srv)
        if pred(m):
            return m
        if time.monotonic() > deadline:
            raise AssertionError("metrics never showed %s:\n%s" % (what, m.text))
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------- format


def test_every_documented_metric_is_exposed_with_its_type(srv):
    m = scrape(srv)
    for g in GAUGES:
        assert m.type_of(g) == "gauge", "%s: TYPE %r" % (g, m.type_of(g))
        assert m.has(g), "no sample for %s" % g
    for c in COUNTERS:
        assert m.type_of(c) == "counter", "%s: TYPE %r" % (c, m.type_of(c))
        assert m.has(c), "no sample for %s" % c
    for c in LABELLED_COUNTERS:
        assert m.type_of(c) == "counter", "%s: TYPE %r" % (c, m.type_of(c))
    for h in HISTOGRAMS:
        assert m.type_of(h) == "histogram", "%s: TYPE %r" % (h, m.type_of(h))
    for (name, _), v in m.samples.items():
        assert not math.isnan(v), name
    # every sample belongs to a declared family
    for (name, _) in m.samples:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in m.types or base in m.types or m.type_of(name), "%s has no # TYPE" % name


def check_histogram(m, name):
    buckets = sorted(((float(dict(lbl)["le"]), v) for (n, lbl), v in m.samples.items()
                      if n == name + "_bucket"), key=lambda x: x[0])
    assert buckets, "no %s_bucket series" % name
    assert buckets[-1][0] == math.inf, "%s has no le=\"+Inf\" bucket" % name
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "%s buckets are not cumulative: %r" % (name, buckets)
    assert m.value(name + "_count") == buckets[-1][1]
    # Every observation is a positive duration: the sum is positive exactly when something was counted.
    assert (m.value(name + "_sum") > 0) == (m.value(name + "_count") > 0), name
    return m.value(name + "_count")


def test_process_metrics_are_plausible(srv):
    clients = [srv.client() for _ in range(5)]
    m = scrape(srv)
    assert m.value("process_resident_memory_bytes") > 1e6
    assert m.value("process_open_fds") >= 3 + len(clients)
    assert m.value("parley_connections") >= len(clients)
    check_histogram(m, "parley_store_commit_seconds")


# ---------------------------------------------------------------------------------------- counters follow traffic


def test_counters_follow_traffic(srv):
    n = [0]
    m0 = scrape(srv, n)
    members = [srv.client("u%d" % i) for i in range(3)]
    for c in members:
        c.join("metrics-room")
    m1 = scrape(srv, n)
    assert delta(m0, m1, "parley_connections") == 3
    assert 3 <= delta(m0, m1, "parley_connections_total") <= 3 + n[0]
    assert delta(m0, m1, "parley_rooms") == 1

    # P publishes into a room of 3 members, echo on: P x 3 deliveries, P replies.
    P = 10
    pub = members[0]
    sent_bytes = 0
    data = {"text": "m" * 100}
    for i in range(P):
        cid = pub.send_cmd("publish", room="metrics-room", data=data)
        sent_bytes += len(('{"type":"publish","id":%d,"room":"metrics-room","data":{"text":"%s"}}'
                           % (cid, "m" * 100)).encode())
        assert pub.wait_reply(cid, skip=True)["ok"] is True
    assert [f["type"] for f in pub.backlog] == ["message"] * P  # its own copies
    pub.backlog.clear()
    for c in members[1:]:
        for _ in range(P):
            assert c.next_json()["type"] == "message"
    m2 = scrape(srv, n)
    assert delta(m1, m2, "parley_published_total") == P
    assert delta(m1, m2, "parley_deliveries_total") == P * len(members)
    assert delta(m1, m2, "parley_messages_in_total") == P
    assert delta(m1, m2, "parley_messages_out_total") == P * len(members) + P  # deliveries + replies
    assert delta(m1, m2, "parley_bytes_in_total") >= sent_bytes
    assert delta(m1, m2, "parley_bytes_out_total") >= P * len(members) * len('{"text":"%s"}' % ("m" * 100))

    # history from an active room's cache
    pub.ok("history", skip=True, room="metrics-room", limit=5)
    m3 = scrape(srv, n)
    assert delta(m2, m3, "parley_history_cache_hits_total") == 1
    assert delta(m2, m3, "parley_history_cache_misses_total") == 0

    # persisted publishes reach the disk: the commit histogram counts commits, the queue drains
    m4 = wait_for(srv, lambda m: check_histogram(m, "parley_store_commit_seconds")
                  > check_histogram(m0, "parley_store_commit_seconds")
                  and m.value("parley_store_queue_depth") == 0, "a storage commit and an empty queue")

    # errors by code: not_member x3 (replies), bad_json x2 (error frames)
    for _ in range(3):
        assert pub.err("publish", room="not-joined", data=1) == "not_member"
    for _ in range(2):
        pub.send_text("this is not json")
        f = pub.next_json()
        assert f["type"] == "error" and f["error"]["code"] == "bad_json", f
    m5 = scrape(srv, n)
    assert delta(m4, m5, "parley_errors_total", code="not_member") == 3
    assert delta(m4, m5, "parley_errors_total", code="bad_json") == 2
    assert delta(m4, m5, "parley_published_total") == 0

    # everybody leaves: connections and rooms fall back, disconnects are counted
    for c in members:
        c.send_close(1000)
        c.recv_close(timeout=5)
        c.close_socket()
    srv.clients = []
    before = n[0]
    m6 = wait_for(srv, lambda m: m.value("parley_connections") == m0.value("parley_connections"),
                  "connections back to %r" % m0.value("parley_connections"))
    assert m6.value("parley_rooms") == m0.value("parley_rooms")
    d = m6.family_sum("parley_disconnects_total") - m5.family_sum("parley_disconnects_total")
    assert 3 <= d <= 3 + (n[0] - before) + 10, "disconnects went up by %r for 3 closed clients" % d


def test_scrapes_during_traffic_are_monotonic(parley):
    srv = parley(*NO_RATE_LIMIT)
    pub = srv.client("pub", timeout=30)
    sub = srv.client("sub", timeout=30)
    pub.join("busy")
    sub.join("busy")
    N = 300
    errors = []

    def publish():
        try:
            pending = []
            for i in range(N):
                pending.append(pub.send_cmd("publish", room="busy", data=i, echo=False))
                if len(pending) >= 8:
                    assert pub.wait_reply(pending.pop(0))["ok"] is True
            for cid in pending:
                assert pub.wait_reply(cid)["ok"] is True
            for _ in range(N):
                assert sub.next_json()["type"] == "message"
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    m0 = scrape(srv)
    t = threading.Thread(target=publish, daemon=True)
    t.start()
    prev = m0
    deadline = time.monotonic() + 60
    scrapes = 0
    while t.is_alive() and time.monotonic() < deadline and scrapes < 400:
        m = scrape(srv)
        scrapes += 1
        for c in COUNTERS:
            assert m.value(c) >= prev.value(c), "%s went down during traffic" % c
        prev = m
        time.sleep(0.02)
    t.join(timeout=max(1, deadline - time.monotonic()))
    assert not t.is_alive() and errors == [], errors
    m1 = scrape(srv)
    assert delta(m0, m1, "parley_published_total") == N
    assert delta(m0, m1, "parley_deliveries_total") == N  # echo off: the subscriber only


# ---------------------------------------------------------------------------------------- slow consumer


def test_slow_consumer_close_is_counted(parley):
    s = parley("--send-queue-messages", "100", "--send-queue-bytes", "65536", "--max-message-size", "32768",
               *NO_RATE_LIMIT)
    pub = s.client("pub", timeout=30)
    stalled = s.client("stalled", timeout=30, rcvbuf=4096)
    pub.join("r")
    stalled.join("r")
    m0 = scrape(s)
    pad = "p" * 8000
    deadline = time.monotonic() + 120
    for i in range(2500):  # at most 20 MB, as in test_slow_consumer.py
        pub.ok("publish", room="r", data={"i": i, "pad": pad}, echo=False)
        if i % 25 == 24:
            if [x["user"] for x in pub.ok("presence", room="r")["members"]] == ["pub"]:
                break
        assert time.monotonic() < deadline, "stalled member not cut off in time"
    else:
        raise AssertionError("stalled member never cut off")
    m1 = wait_for(s, lambda m: delta(m0, m, "parley_slow_consumer_closes_total") >= 1,
                  "a slow-consumer close")
    assert delta(m0, m1, "parley_slow_consumer_closes_total") == 1
    # the client drains what the kernel held and finds 4008
    got = 0
    while True:
        try:
            msg = stalled.recv_message(timeout=20)
        except socket.timeout:
            raise AssertionError("stalled client: no close after %d messages" % got)
        if isinstance(msg, Close):
            break
        got += 1
        assert got <= 2500
    assert msg.code == 4008
    # once the close went out the connection ends, counted under its reason
    m2 = wait_for(s, lambda m: delta(m0, m, "parley_connections") == -1, "the stalled connection gone")
    assert delta(m0, m2, "parley_disconnects_total", reason="slow_consumer") == 1
    assert delta(m0, m2, "parley_slow_consumer_closes_total") == 1


def test_metrics_is_not_a_websocket_endpoint(srv):
    with pytest.raises(HandshakeError):
        WSClient(HOST, srv.port, path="/metrics", timeout=5)
