"""parley-bench across processes and URLs (issue 13): --url repeated or as a comma list spreads
connections round-robin over several targets; --procs N forks N workers, each with every Nth
connection (the descriptor limit is per process), and merges their results: counts add up,
latency histograms are merged bucket by bucket (bench/test_bench.c checks the merge itself);
--server-pid repeated or as a list samples every node. (Across cluster nodes:
test_cluster_ops.py.)
"""

import json
import os
import re
import resource
import subprocess

import pytest

BENCH = os.environ.get("PARLEY_BENCH")


def run(args, timeout=90, nofile=None):
    assert BENCH and os.path.exists(BENCH), "PARLEY_BENCH must point at parley-bench"

    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return subprocess.run([BENCH] + list(args), capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit)


def bench_json(args, **kw):
    out = run(list(args) + ["--json", "--quiet"], **kw)
    assert out.returncode == 0, "%s\nstdout: %s\nstderr: %s" % (args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def url(srv):
    return "ws://127.0.0.1:%d/ws" % srv.port


def total_connections(srv):
    status, _, body = srv.metrics_get()
    assert status == 200
    return int(re.search(rb"^parley_connections_total (\d+)$", body, re.M).group(1))


def test_fanout_in_three_processes_delivers_everything(srv):
    r = bench_json(["fanout", "--url", url(srv), "--members", "301", "--rate", "40", "--duration", "2",
                    "--drain", "3", "--procs", "3", "--server-pid", str(srv.proc.pid)])
    assert r["procs"] == 3 and r["joined"] == 301 and r["closed"] == 0, r
    assert r["published"] > 0 and r["expected"] == r["published"] * 301, r
    assert r["delivered"] == r["expected"] and r["errors"] == 0, r
    assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"] <= r["latency_max_ms"], r
    # the members really are 301 distinct connections, spread over the workers
    assert total_connections(srv) == 301


def test_chat_in_two_processes_merges_per_room_seqs(srv):
    r = bench_json(["chat", "--url", url(srv), "--rooms", "31", "--members", "3", "--rate", "120",
                    "--duration", "2", "--drain", "3", "--procs", "2"])
    assert r["joined"] == 93 and r["publish_err"] == 0 and r["delivered_ratio"] == 1, r
    assert r["delivered"] == r["published"] * 3, r
    # per-room highest seq, merged as a max over workers, summed over rooms
    assert r["persisted_seq_sum"] == r["publish_ok"] == r["published"], r


def test_as_many_processes_as_connections(srv):
    r = bench_json(["fanout", "--url", url(srv), "--members", "3", "--rate", "20", "--duration", "1",
                    "--drain", "2", "--procs", "3"])
    assert r["joined"] == 3 and r["delivered"] == r["published"] * 3 > 0, r


def test_more_processes_than_connections_is_refused(srv):
    out = run(["fanout", "--url", url(srv), "--members", "3", "--procs", "4", "--duration", "1"])
    assert out.returncode == 2 and "fewer connections than --procs" in out.stderr, out.stderr


def test_procs_beat_the_per_process_descriptor_limit(srv):
    """The reason for --procs: with 200 descriptors per process, 300 connections fail in one
    process and all connect in two (150 each)."""
    one = run(["fanout", "--url", url(srv), "--members", "300", "--rate", "10", "--duration", "1",
               "--drain", "1", "--json", "--quiet"], nofile=200)
    assert one.returncode != 0
    assert json.loads(one.stdout)["joined"] < 300
    r = bench_json(["fanout", "--url", url(srv), "--members", "300", "--rate", "10", "--duration", "1",
                    "--drain", "2", "--procs", "2"], nofile=200)
    assert r["joined"] == 300 and r["delivered"] == r["expected"] > 0, r


def test_urls_round_robin_over_targets(parley):
    a, b, c = parley(), parley(), parley()
    r = bench_json(["connect", "--url", url(a), "--url", "%s,%s" % (url(b), url(c)), "--conns", "90",
                    "--rooms", "1", "--duration", "1"])
    assert r["ready"] == 90 and r["failed"] == 0, r
    assert [total_connections(s) for s in (a, b, c)] == [30, 30, 30]


def test_urls_and_procs_together(parley):
    """Two workers, two targets: global connection i goes to target i % 2 whichever worker owns it."""
    a, b = parley(), parley()
    r = bench_json(["fanout", "--url", "%s,%s" % (url(a), url(b)), "--rooms", "2", "--members", "20",
                    "--publishers", "2", "--rate", "20", "--duration", "1", "--drain", "2",
                    "--procs", "2"])
    # Without a cluster the two servers share nothing; but room = i % 2 and target = i % 2 put
    # each room on one server, so every delivery still arrives.
    assert r["joined"] == 40 and r["urls"] == 2 and r["delivered"] == r["expected"] > 0, r
    assert total_connections(a) == total_connections(b) == 20


def test_server_pid_list_reports_each_and_the_sum(parley):
    a, b = parley(), parley()
    r = bench_json(["fanout", "--url", url(a), "--members", "50", "--rate", "20", "--duration", "1",
                    "--drain", "1", "--server-pid", "%d,%d" % (a.proc.pid, b.proc.pid),
                    "--server-pid", str(a.proc.pid)])  # a repeat is counted once
    assert r["server_pids"] == 2 and r["server1_pid"] == a.proc.pid and r["server2_pid"] == b.proc.pid, r
    total = r["server_user_s"] + r["server_sys_s"]
    assert abs(r["server1_cpu_s"] + r["server2_cpu_s"] - total) < 1e-6, r
    assert r["server_rss_kib_end"] == r["server1_rss_kib_end"] + r["server2_rss_kib_end"], r


@pytest.mark.parametrize("args,why", [
    (["fanout", "--rate", "0", "--procs", "2"], "--procs needs an open-loop --rate"),
    (["connect", "--procs", "2"], "--procs is for fanout and chat"),
    (["fanout", "--procs", "0"], "--procs 1..64"),
    (["fanout", "--server-pid", "12,x"], "--server-pid takes PID"),
    (["fanout", "--url", "ws://127.0.0.1:1/ws,http://x/"], "--url must start with ws://"),
])
def test_bad_flags(args, why):
    out = run(args + ["--duration", "1"])
    assert out.returncode == 2 and why in out.stderr, (out.returncode, out.stderr)
