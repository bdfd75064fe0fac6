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
# given per node). BUILD=build by default; REDIS_PORT/BASE_PORT to move the ports. WRAP0="valgrind
# --tool=callgrind ..." runs node 0 under that command (instruction counts per message; the bench's
# CPU figures are then not comparable). NODE_ARGS="--cluster-read-delay-us 0 ..." go to every parleyd.
# REDIS_TLS=1: Redis serves TLS only (--port 0 --tls-port, client certificates required) and the
# nodes connect with rediss:// through their TLS relay (docs/cluster.md, "TLS to Redis"); the
# certificates are made with the openssl CLI in the temp dir.
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

tls=${REDIS_TLS:-0}
rurl="redis://127.0.0.1:$rport" rtls="" cli=""
if [ "$nodes" -gt 1 ] && [ "$tls" = 1 ]; then
    (cd "$tmp"
     ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
     # shellcheck disable=SC2086
     openssl req -x509 $ec -keyout ca.key -out ca.crt -days 2 -subj /CN=bench-ca \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign
     for who in server client; do
         # shellcheck disable=SC2086
         openssl req -new $ec -keyout $who.key -out $who.csr -subj /CN=$who
     done
     printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
     printf 'extendedKeyUsage=clientAuth\n' >client.ext
     for who in server client; do
         openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $who.crt \
             -days 2 -extfile $who.ext
     done) >/dev/null 2>&1
    rtls="--port 0 --tls-port $rport --tls-cert-file $tmp/server.crt --tls-key-file $tmp/server.key
          --tls-ca-cert-file $tmp/ca.crt --tls-auth-clients yes"
    cli="--tls --cacert $tmp/ca.crt --cert $tmp/client.crt --key $tmp/client.key"
    rurl="rediss://127.0.0.1:$rport --cluster-tls-ca $tmp/ca.crt --cluster-tls-cert $tmp/client.crt
          --cluster-tls-key $tmp/client.key"
fi
if [ "$nodes" -gt 1 ]; then
    # shellcheck disable=SC2086 # $rtls: words
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly yes \
        --appendfsync everysec --logfile "$tmp/redis.log" $rtls &
    pids="$pids $!"
    i=0
    # shellcheck disable=SC2086 # $cli: words
    while ! redis-cli -p "$rport" $cli ping >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "redis did not start" >&2; exit 1; }; sleep 0.1
    done
fi

urls="" spids=""
n=0
while [ $n -lt "$nodes" ]; do
    if [ "$mode" = reuseport ]; then port=$base; else port=$((base + n)); fi
    extra=""
    [ "$nodes" -gt 1 ] && extra="--cluster $rurl --node-id bench$n"
    [ "$mode" = reuseport ] && extra="$extra --reuse-port 1"
    extra="$extra ${NODE_ARGS:-}"
    wrap=""
    [ $n -eq 0 ] && wrap=${WRAP0:-}
    # shellcheck disable=SC2086 # word splitting of $extra and $wrap is intended
    $wrap "$build/server/parleyd" --host 127.0.0.1 --port "$port" --admin-listen "127.0.0.1:$((base + 100 + n))" \
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
        i=$((i + 1)); [ $i -lt 600 ] || { echo "node $n did not start" >&2; cat "$tmp/node$n.log" >&2; exit 1; }
        sleep 0.1
    done
    n=$((n + 1))
done
"$build/bench/parley-bench" "$scen" --url "$urls" --server-pid "$spids" --json --quiet "$@"
if [ "$tls" = 1 ]; then
    # the TLS relay thread's own CPU (included in the nodes' figures above), per node, on stderr
    for p in $(echo "$spids" | tr , ' '); do
        for t in /proc/"$p"/task/*; do
            [ "$(cat "$t/comm")" = parleyd-tls ] || continue
            awk -v p="$p" -v hz="$(getconf CLK_TCK)" \
                '{ sub(/.*\) /, ""); printf "node %s: relay thread cpu_s %.2f\n", p, ($12 + $13) / hz }' \
                "$t/stat" >&2
        done
    done
fi
