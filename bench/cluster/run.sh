#!/bin/sh
# bench/cluster/run.sh - the cluster figures of docs/benchmarks.md ("Cluster"): a redis-server and N
# parleyd nodes on this machine, then parley-bench against them.
#
#   bench/cluster/run.sh NODES MODE SCENARIO [parley-bench options...]
#     NODES     1..8 nodes (1: a single parleyd without --cluster, the baseline)
#     MODE      ports     each node on its own port; the bench gets every URL (--url list)
#               reuseport every node on one port with --reuse-port; the bench gets one URL
#     SCENARIO  fanout | chat | connect ...; the options go to parley-bench as they are
#
# Prints parley-bench's JSON (with --server-pid of every node, so CPU is summed over the nodes and
# given per node). BUILD=build by default; REDIS_PORT/BASE_PORT to move the ports.
set -eu
nodes=$1 mode=$2 scen=$3
shift 3
build=${BUILD:-build}
base=${BASE_PORT:-18100}
rport=${REDIS_PORT:-18099}
tmp=$(mktemp -d /tmp/parley-cluster-bench.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

if [ "$nodes" -gt 1 ]; then
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly yes \
        --appendfsync everysec --logfile "$tmp/redis.log" &
    pids="$pids $!"
    i=0
    while ! redis-cli -p "$rport" ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "redis did not start" >&2; exit 1; }; sleep 0.1
    done
fi

urls="" spids=""
n=0
while [ $n -lt "$nodes" ]; do
    if [ "$mode" = reuseport ]; then port=$base; else port=$((base + n)); fi
    extra=""
    [ "$nodes" -gt 1 ] && extra="--cluster redis://127.0.0.1:$rport --node-id bench$n"
    [ "$mode" = reuseport ] && extra="$extra --reuse-port 1"
    # shellcheck disable=SC2086 # word splitting of $extra is intended
    "$build/server/parleyd" --host 127.0.0.1 --port "$port" --admin-listen "127.0.0.1:$((base + 100 + n))" \
        --data-dir "$tmp/node$n" --log-level warn --max-connections 30000 \
        --rate-messages 1000000 --rate-burst 1000000 --rate-joins 1000000 $extra 2>"$tmp/node$n.log" &
    pids="$pids $!"
    spids="${spids:+$spids,}$!"
    if [ "$mode" != reuseport ] || [ $n -eq 0 ]; then
        urls="${urls:+$urls,}ws://127.0.0.1:$port/ws"
    fi
    n=$((n + 1))
done
n=0
while [ $n -lt "$nodes" ]; do
    i=0
    while ! curl -sf "http://127.0.0.1:$((base + 100 + n))/healthz" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "node $n did not start" >&2; cat "$tmp/node$n.log" >&2; exit 1; }
        sleep 0.1
    done
    n=$((n + 1))
done
"$build/bench/parley-bench" "$scen" --url "$urls" --server-pid "$spids" --json --quiet "$@"
