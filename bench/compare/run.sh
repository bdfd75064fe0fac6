#!/usr/bin/env bash
# Side-by-side benchmark: parleyd (native protocol and its /socket.io/ endpoint) vs the ws 8
# peer vs the Socket.IO 4 peer, same scenarios,
# one server at a time, a fresh server per run, server on CPU 0 and parley-bench on CPU 1,
# everything on loopback. Prints one table (and leaves every raw JSON result in $OUT).
#
# Usage: bench/compare/run.sh [BUILD_DIR]        (default BUILD_DIR: <repo>/build)
# Environment:
#   PARLEYD=path  BENCH=path      binaries (default: BUILD_DIR/server/parleyd, BUILD_DIR/bench/parley-bench)
#   SERVERS="parleyd parleyd-sio ws socketio"  which servers to run (default all four;
#                                 parleyd-sio is parleyd driven with --protocol socketio)
#   DURATION=10                   seconds of each measured phase
#   CONNS=5000                    members of the fan-out room and idle connections
#   POLL_SESSIONS=2000            idle Engine.IO polling sessions (parleyd only, idle_polling.py)
#   OUT=dir                       where results go (default: a new mktemp dir)
#   SERVER_CPU=0 BENCH_CPU=1      CPU pinning (taskset)
#   SWEEP="1000 5000 10000 19000" connection counts of the saturated fan-out sweep (the
#                                 throughput/p99 curve); SWEEP= skips it (about 1 min per
#                                 server and count)
#   CHARTS=0                      skip the charts (bench/compare/charts.sh, needs gnuplot)
#   TABLE_ONLY=1 OUT=dir          only print the table (and draw the charts) of an earlier run
# Default run: about 15 minutes on a 2-core machine (5 without the sweep).
# Every case also writes a per-second time series, OUT/TAG.SERVER.csv (parley-bench --series).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
PARLEYD=${PARLEYD:-$build/server/parleyd}
BENCH=${BENCH:-$build/bench/parley-bench}
SERVERS=${SERVERS:-"parleyd parleyd-sio ws socketio"}
DURATION=${DURATION:-10}
CONNS=${CONNS:-5000}
POLL_SESSIONS=${POLL_SESSIONS:-2000}
SWEEP=${SWEEP-"1000 5000 10000 19000"}
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
OUT=${OUT:-$(mktemp -d /tmp/parley-compare.XXXXXX)}
mkdir -p "$OUT"

die() { echo "run.sh: $*" >&2; exit 1; }
command -v jq >/dev/null || die "jq is required (apt-get install jq)"
command -v taskset >/dev/null || die "taskset is required (util-linux)"
[ -x "$BENCH" ] || die "no parley-bench at $BENCH (build first: ninja -C $build)"

# The peers and parleyd at 19,000 connections need more than the default 1,024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ncpu=$(nproc)
if [ "$ncpu" -lt 2 ]; then SERVER_CPU=0; BENCH_CPU=0; fi

# Node peers: install exactly what the lock file says, once.
need_node=0
[ -n "${TABLE_ONLY:-}" ] && SERVERS=parleyd
for s in $SERVERS; do case $s in parleyd|parleyd-sio) ;; *) need_node=1 ;; esac; done
if [ $need_node = 1 ]; then
  command -v node >/dev/null || die "node is required for the peers"
  if [ ! -d "$here/node_modules/ws" ] || [ ! -d "$here/node_modules/socket.io" ] ||
     [ "$here/package-lock.json" -nt "$here/node_modules" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
fi

SERVER_PID=
SERVER_PORT=

# Starts server $1 pinned to SERVER_CPU; sets SERVER_PID and SERVER_PORT.
start_server() {
  local name=$1 log="$OUT/$2.server.log" cmd
  case $name in
    parleyd|parleyd-sio)
      [ -x "$PARLEYD" ] || die "no parleyd at $PARLEYD"
      local data; data=$(mktemp -d "$OUT/data.XXXXXX")
      # Large queue limits so the saturation run measures throughput, not 4008 closes.
      cmd=("$PARLEYD" --host 127.0.0.1 --port 0 --data-dir "$data" --log-level info
           --ping-interval 300 --ping-timeout 600)
      # No admin listener: the bench reads /proc, and a parleyd already running here holds 9180.
      "$PARLEYD" --help 2>/dev/null | grep -q -- --admin-listen && cmd+=(--admin-listen off)
      # Lift the per-connection rate limits (a protection, not a cost being measured):
      # one publisher at saturation and 50 history pagers exceed the defaults.
      if "$PARLEYD" --help 2>/dev/null | grep -q -- --rate-history; then
        cmd+=(--rate-messages 1000000 --rate-burst 1000000 --rate-joins 1000000
              --rate-history 1000000)
      fi ;;
    ws)       cmd=(node "$here/ws-server.js" --host 127.0.0.1 --port 0) ;;
    socketio) cmd=(node "$here/socketio-server.js" --host 127.0.0.1 --port 0) ;;
    *) die "unknown server $name" ;;
  esac
  taskset -c "$SERVER_CPU" "${cmd[@]}" 2>"$log" &
  SERVER_PID=$!
  SERVER_PORT=
  for _ in $(seq 1 100); do
    SERVER_PORT=$(grep -m1 -o 'msg=listening.*port=[0-9]*' "$log" 2>/dev/null | sed 's/.*port=//') || true
    [ -n "$SERVER_PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; die "$name exited at start"; }
    sleep 0.1
  done
  [ -n "$SERVER_PORT" ] || { kill "$SERVER_PID"; die "$name did not print msg=listening"; }
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop_server EXIT

url_for() {
  case $1 in
    parleyd|parleyd-sio|ws) echo "ws://127.0.0.1:$SERVER_PORT/ws" ;;
    socketio)   echo "ws://127.0.0.1:$SERVER_PORT/socket.io/?EIO=4&transport=websocket" ;;
  esac
}
proto_for() { case $1 in socketio|parleyd-sio) echo socketio ;; *) echo parley ;; esac; }

# run_case SERVER TAG SCENARIO ARGS...: fresh server, one bench run, JSON to $OUT/TAG.SERVER.json
run_case() {
  local server=$1 tag=$2; shift 2
  start_server "$server" "$tag.$server"
  echo "== $server: $tag ($*)" >&2
  taskset -c "$BENCH_CPU" "$BENCH" "$@" --url "$(url_for "$server")" --protocol "$(proto_for "$server")" \
    --server-pid "$SERVER_PID" --series "$OUT/$tag.$server.csv" --json --quiet >"$OUT/$tag.$server.json" 2>"$OUT/$tag.$server.err" || true
  stop_server
  [ -s "$OUT/$tag.$server.json" ] || { echo "   (no result; see $OUT/$tag.$server.err)" >&2; echo '{}' >"$OUT/$tag.$server.json"; }
  jq -c . "$OUT/$tag.$server.json" >&2 || true
}

if [ -z "${TABLE_ONLY:-}" ]; then
for s in $SERVERS; do
  run_case "$s" idle    connect --conns "$CONNS" --rooms 100 --duration 3 --ramp 20000
  run_case "$s" fanout  fanout --rooms 1 --members "$CONNS" --publishers 1 --rate 10 --size 100 --duration "$DURATION" --ramp 4000
  run_case "$s" satur   fanout --rooms 1 --members "$CONNS" --publishers 1 --rate 0 --window 32 --size 100 --duration "$DURATION" --ramp 4000
  run_case "$s" chat    chat --rooms 2000 --members 5 --rate 2000 --size 40 --duration "$DURATION" --ramp 4000
  # History paging exists only in Parley's protocol.
  [ "$s" = parleyd ] && run_case "$s" history history --rooms 10 --clients 50 --prefill 2000 --limit 50 --duration 5
  # Idle Engine.IO long-polling sessions (parleyd's /socket.io/; the Node server here is
  # websocket-only): RSS per session, one GET held each, as socket.io-client leaves them.
  if [ "$s" = parleyd ] && "$PARLEYD" --help 2>/dev/null | grep -q -- --sio-max-sessions; then
    start_server parleyd idlepoll.parleyd
    echo "== parleyd: idlepoll (idle_polling.py --sessions $POLL_SESSIONS)" >&2
    python3 "$here/idle_polling.py" --port "$SERVER_PORT" --pid "$SERVER_PID" --sessions "$POLL_SESSIONS" \
      >"$OUT/idlepoll.parleyd.json" 2>"$OUT/idlepoll.parleyd.err" || echo '{}' >"$OUT/idlepoll.parleyd.json"
    stop_server
    jq -c . "$OUT/idlepoll.parleyd.json" >&2 || true
  fi
  # The curve: saturated fan-out at growing room sizes (deliveries/s and p99 per size).
  for n in $SWEEP; do
    run_case "$s" "sweep$n" fanout --rooms 1 --members "$n" --publishers 1 --rate 0 --window 32 --size 100 \
      --duration "$DURATION" --ramp 4000
  done
done
echo "$(date -u '+%Y-%m-%d %H:%M UTC'): $CONNS conns, ${DURATION}s phases, server CPU $SERVER_CPU, bench CPU $BENCH_CPU" >"$OUT/run.txt"
echo "== floor probe" >&2
"$BENCH" floor --sockets 5000 --size 150 --rounds 100 --server-cpu "$SERVER_CPU" --client-cpu "$BENCH_CPU" --json \
  >"$OUT/floor.json" 2>"$OUT/floor.err" || echo '{}' >"$OUT/floor.json"
fi

# ---------------- table ----------------
get() { # get TAG SERVER FIELD -> value or "-"
  local f="$OUT/$1.$2.json"
  [ -f "$f" ] || { echo -; return; }
  jq -r --arg k "$3" 'if has($k) and (.[$k] != -1) then .[$k] else "-" end' "$f"
}
fmt() { # 3 significant digits, no exponent
  [ "$1" = - ] && { echo -; return; }
  awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v
    if (a >= 100) printf "%.0f", v; else if (a >= 10) printf "%.1f", v
    else if (a >= 1) printf "%.2f", v; else if (a == 0) printf "0"; else printf "%.3g", v }'
}
ratio() { if [ "$1" = - ] || [ "$2" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; fi; }

row() { # row LABEL TAG FIELD [FLOORFIELD]
  local label=$1 tag=$2 field=$3 ff=${4:-} p ps w s fl=-
  p=$(get "$tag" parleyd "$field"); ps=$(get "$tag" parleyd-sio "$field")
  w=$(get "$tag" ws "$field"); s=$(get "$tag" socketio "$field")
  [ -n "$ff" ] && fl=$(jq -r --arg k "$ff" '.[$k] // "-"' "$OUT/floor.json")
  printf '| %-44s | %10s | %11s | %10s | %10s | %10s | %9s | %9s | %9s | %9s |\n' "$label" "$(fmt "$p")" \
    "$(fmt "$ps")" "$(fmt "$w")" "$(fmt "$s")" "$(fmt "$fl")" "$(ratio "$p" "$w")" "$(ratio "$p" "$s")" \
    "$(ratio "$ps" "$p")" "$(ratio "$ps" "$s")"
}

echo
echo "Results in $OUT  (server CPU $SERVER_CPU, bench CPU $BENCH_CPU, $CONNS conns, ${DURATION}s phases)"
echo "(parleyd-sio: parleyd's /socket.io/ endpoint; Ps/P = parleyd-sio / parleyd, Ps/sio = parleyd-sio / socketio)"
printf '| %-44s | %10s | %11s | %10s | %10s | %10s | %9s | %9s | %9s | %9s |\n' metric parleyd parleyd-sio ws socketio floor \
  "P/ws" "P/sio" "Ps/P" "Ps/sio"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "------------" "-------------" "------------" \
  "------------" "------------" "-----------" "-----------" "-----------" "-----------"
row "fan-out 1x$CONNS @10/s: user us/delivery"      fanout server_user_us_per_delivery  user_us_per_send
row "fan-out 1x$CONNS @10/s: total us/delivery"     fanout server_total_us_per_delivery total_us_per_send
row "fan-out 1x$CONNS @10/s: p99 latency ms"        fanout latency_p99_ms
row "fan-out 1x$CONNS @10/s: delivered ratio"       fanout delivered_ratio
row "saturation 1x$CONNS: deliveries/s"             satur  deliveries_per_s             sends_per_s
row "saturation 1x$CONNS: total us/delivery"        satur  server_total_us_per_delivery
row "saturation 1x$CONNS: p99 latency ms"           satur  latency_p99_ms
row "idle: server RSS bytes/conn ($CONNS conns)"    idle   server_rss_bytes_per_conn
row "idle: connect rate conn/s"                     idle   connect_rate
row "idle: server RSS bytes/polling session ($POLL_SESSIONS)" idlepoll server_rss_bytes_per_session
row "chat 2000x5 @2000/s: p99 latency ms"           chat   latency_p99_ms
row "chat 2000x5 @2000/s: p99 reply ms"             chat   ack_p99_ms
row "chat 2000x5 @2000/s: delivered ratio"          chat   delivered_ratio
row "chat 2000x5 @2000/s: total us/delivery"        chat   server_total_us_per_delivery
row "chat 2000x5 @2000/s: persisted (seq sum)"      chat   persisted_seq_sum
row "history 50 clients, limit 50: pages/s"         history pages_per_s
row "history 50 clients, limit 50: p99 ms"          history latency_p99_ms

if [ "${CHARTS:-1}" != 0 ]; then
  if command -v gnuplot >/dev/null; then
    "$here/charts.sh" "$OUT" ||
      echo "run.sh: charts failed" >&2
  else
    echo "run.sh: no gnuplot: charts skipped (apt-get install gnuplot-nox)" >&2
  fi
fi
