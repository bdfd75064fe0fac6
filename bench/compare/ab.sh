#!/usr/bin/env bash
# ab.sh - side-by-side CPU per delivery of parleyd variants in one run, alternating.
#
#   bench/compare/ab.sh LABEL=SERVER[:PROTOCOL] ...
#         (env: SCENARIO ROUNDS MEMBERS RATE DURATION OUT EXTRA)
#
# Each round runs every variant once, in the order given, each with a fresh
# server pinned to SERVER_CPU (0) and parley-bench on BENCH_CPU (1). SERVER
# is a parleyd binary, or node-socketio / node-ws (the Node peers of
# run.sh). PROTOCOL is parley (default) or socketio (parleyd's /socket.io/).
# SCENARIO=fanout (default) is run.sh's fan-out: 1 room x MEMBERS 5000, one
# publisher at RATE 10/s, 100-byte payloads; SCENARIO=chat is run.sh's chat
# (2,000 rooms x 5, 2,000 msg/s, 40 bytes, stored by parleyd; VOLATILE=1:
# not stored, so parleyd's loop is compared without its SQLite writer). DURATION
# 10 s. Alternating puts every variant under the same drift of a shared
# machine; each run and the medians of ROUNDS (3) are printed. CPU per
# delivery comes from /proc ticks, sampled at the kernel's tick (250 Hz
# here): user time is a small share of a mostly-kernel workload, so a
# 10 s run holds only about a hundred user ticks; use longer runs and
# more rounds for ratios near 1.
#   e.g. bench/compare/ab.sh native=build/server/parleyd sio=build/server/parleyd:socketio \
#        node=node-socketio
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
BENCH=${BENCH:-$repo/build/bench/parley-bench}
ROUNDS=${ROUNDS:-3}
SCENARIO=${SCENARIO:-fanout}
MEMBERS=${MEMBERS:-5000}
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
EXTRA=${EXTRA:-}
OUT=${OUT:-$(mktemp -d /tmp/parley-ab.XXXXXX)}
mkdir -p "$OUT"
[ $# -ge 1 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

pid=
stop() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
}
trap stop EXIT

echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') start; $(uptime)" | tee "$OUT/run.txt"
for r in $(seq "$ROUNDS"); do
	for v in "$@"; do
		label=${v%%=*}; rest=${v#*=}; bin=${rest%%:*}; proto=parley
		[ "$rest" != "$bin" ] && proto=${rest#*:}
		tag="$label.$r"
		data=$(mktemp -d "$OUT/data.XXXXXX")
		path=/ws
		case $bin in
		node-socketio)
			cmd=(node "$here/socketio-server.js" --host 127.0.0.1 --port 0)
			proto=socketio; path="/socket.io/?EIO=4&transport=websocket" ;;
		node-ws)
			cmd=(node "$here/ws-server.js" --host 127.0.0.1 --port 0) ;;
		*)
			cmd=("$bin" --host 127.0.0.1 --port 0 --data-dir "$data" --log-level info
			     --ping-interval 300 --ping-timeout 600 --rate-messages 1000000
			     --rate-burst 1000000 --rate-joins 1000000)
			# No admin listener where there is one (another parleyd may hold 9180).
			"$bin" --help 2>/dev/null | grep -q -- --admin-listen && cmd+=(--admin-listen off)
			# shellcheck disable=SC2206
			cmd+=($EXTRA) ;;
		esac
		taskset -c "$SERVER_CPU" "${cmd[@]}" 2>"$OUT/$tag.server.log" &
		pid=$!
		port=
		for _ in $(seq 100); do
			port=$(grep -m1 -o 'msg=listening.*port=[0-9]*' "$OUT/$tag.server.log" | sed 's/.*port=//') || true
			[ -n "$port" ] && break
			sleep 0.1
		done
		[ -n "$port" ] || { cat "$OUT/$tag.server.log" >&2; exit 1; }
		if [ "$SCENARIO" = chat ]; then
			args=(chat --rooms 2000 --members 5 --rate "${RATE:-2000}" --size 40)
			[ -n "${VOLATILE:-}" ] && args+=(--volatile)
		else
			args=(fanout --rooms 1 --members "$MEMBERS" --publishers 1 --rate "${RATE:-10}" --size 100)
		fi
		taskset -c "$BENCH_CPU" "$BENCH" "${args[@]}" --duration "$DURATION" --ramp 4000 --protocol "$proto" \
			--url "ws://127.0.0.1:$port$path" --server-pid "$pid" --json --quiet \
			>"$OUT/$tag.json" 2>"$OUT/$tag.err" || true
		stop
		rm -rf "$data"
		jq -r --arg t "$tag" '"\($t) user_us=\(.server_user_us_per_delivery) total_us=\(.server_total_us_per_delivery) p99_ms=\(.latency_p99_ms) delivered=\(.delivered_ratio)"' "$OUT/$tag.json" || true
	done
done
echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC') end; $(uptime)" | tee -a "$OUT/run.txt"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| variant | user us/delivery (runs) | median | total us/delivery (runs) | median | p99 ms (median) |"
echo "| --- | --- | --- | --- | --- | --- |"
for v in "$@"; do
	label=${v%%=*}
	u=$(for r in $(seq "$ROUNDS"); do jq -r .server_user_us_per_delivery "$OUT/$label.$r.json"; done)
	t=$(for r in $(seq "$ROUNDS"); do jq -r .server_total_us_per_delivery "$OUT/$label.$r.json"; done)
	p=$(for r in $(seq "$ROUNDS"); do jq -r .latency_p99_ms "$OUT/$label.$r.json"; done)
	printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(echo $u | sed 's/ /, /g')" \
		"$(echo "$u" | median)" "$(echo $t | sed 's/ /, /g')" "$(echo "$t" | median)" "$(echo "$p" | median)"
done | tee -a "$OUT/run.txt"
