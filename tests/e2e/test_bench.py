"""parley-bench against the real parleyd: every scenario runs, measures, and reports in JSON.

Small sizes and short phases: this checks the tool an operator load-tests with, not performance
(docs/benchmarks.md has the figures).
"""

import json
import os
import subprocess

import pytest

BENCH = os.environ.get("PARLEY_BENCH")


def bench(srv, *args, timeout=60):
    assert BENCH and os.path.exists(BENCH), "PARLEY_BENCH must point at parley-bench"
    url = "ws://127.0.0.1:%d/ws" % srv.port
    argv = [BENCH] + list(args) + ["--url", url, "--server-pid", str(srv.proc.pid), "--json", "--quiet"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, "%s\nstdout: %s\nstderr: %s" % (argv, out.stdout, out.stderr)
    return json.loads(out.stdout)


def test_connect_reports_rss_per_connection(srv):
    r = bench(srv, "connect", "--conns", "300", "--rooms", "10", "--duration", "1")
    assert r["ready"] == 300 and r["joins_ok"] == 300 and r["failed"] == 0, r
    assert 0 < r["server_rss_bytes_per_conn"] < 64 * 1024, r


def test_fanout_delivers_everything_with_latency(srv):
    r = bench(srv, "fanout", "--rooms", "2", "--members", "50", "--publishers", "2", "--rate", "50",
              "--duration", "2", "--drain", "2")
    assert r["expected"] > 0 and r["delivered"] == r["expected"], r
    assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"] <= r["latency_max_ms"], r
    # Reported, as numbers. (Not "> 0": /proc counts CPU in 10 ms ticks, and a 2 s run on a fast
    # machine may round to 0; a ">= 0" check on a duration could never fail.)
    assert all(isinstance(r[k], (int, float)) for k in ("server_user_s", "server_sys_s")), r


def test_chat_persists_every_publish(srv):
    r = bench(srv, "chat", "--rooms", "20", "--members", "3", "--rate", "100", "--duration", "2",
              "--drain", "2")
    assert r["publish_err"] == 0 and r["delivered_ratio"] == 1, r
    assert r["persisted_seq_sum"] == r["publish_ok"], r


def test_history_pages(parley):
    s = parley()  # the e2e servers run with per-connection rate limits lifted
    r = bench(s, "history", "--rooms", "2", "--clients", "4", "--prefill", "120", "--limit", "50",
              "--duration", "2")
    assert r["pages"] > 0 and r["history_errors"] == 0, r


DEFAULT_RATES = ("--rate-messages", "1000", "--rate-burst", "2000", "--rate-joins", "20",
                 "--rate-history", "20", "--rate-names", "10")


def test_reconnect_storm_recovers_every_client(parley):
    # With the default per-connection limits: the scenario's publishers and clients must fit them.
    s = parley(*DEFAULT_RATES)
    r = bench(s, "reconnect", "--clients", "300", "--rooms", "60", "--missed", "20", "--window", "0.5",
              "--p99-target", "60000", "--probe-rate", "50", timeout=120)
    assert r["published"] == 60 * 20 and r["publish_errors"] == 0, r
    assert r["reconnected"] == 300 and r["recovered"] == 300 and r["not_recovered"] == 0, r
    assert r["closed"] == 0 and r["gaps"] == 0 and r["duplicates"] == 0, r
    assert 0 < r["full_recovery_s"] < 60 and r["probe_received"] > 0, r
    assert r["targets"] == "met", r


def test_series_writes_one_row_per_second(srv, tmp_path):
    """--series FILE.csv: a row per elapsed second whose deliveries add up to the run's total."""
    csv = tmp_path / "fanout.csv"
    r = bench(srv, "fanout", "--rooms", "1", "--members", "40", "--publishers", "1", "--rate", "40",
              "--duration", "3", "--drain", "2", "--series", str(csv))
    lines = csv.read_text().splitlines()
    assert lines[0] == "t_s,ready,deliveries,deliveries_per_s,p50_ms,p99_ms,max_ms,errors,closed"
    rows = [dict(zip(lines[0].split(","), l.split(","))) for l in lines[1:]]
    assert len(rows) >= 3, lines
    ts = [float(x["t_s"]) for x in rows]
    assert ts == sorted(ts) and all(b - a <= 1.5 for a, b in zip(ts, ts[1:])), ts
    # Every delivery is counted in exactly one second (the last, partial one included).
    assert sum(int(x["deliveries"]) for x in rows) == r["delivered"], (rows, r)
    busy = [x for x in rows if int(x["deliveries"]) > 0]
    assert busy and all(0 < float(x["p50_ms"]) <= float(x["p99_ms"]) <= float(x["max_ms"]) for x in busy), busy
    assert all(int(x["errors"]) == 0 and int(x["closed"]) == 0 for x in rows), rows
    assert int(rows[-1]["ready"]) == 40


def test_series_refuses_an_unwritable_file(srv, tmp_path):
    out = subprocess.run([BENCH, "fanout", "--series", str(tmp_path / "no" / "such.csv"), "--url",
                          "ws://127.0.0.1:%d/ws" % srv.port], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--series" in out.stderr, out
