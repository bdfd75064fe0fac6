#!/bin/sh
# callgrind.sh - instructions per delivery of parleyd in a steady fan-out.
#
#   bench/callgrind.sh PARLEYD [BENCH]   (env: SCENARIO MEMBERS ROOMS RATE WINDOW PROTOCOL VOLATILE OUT EXTRA)
#
# Starts PARLEYD under `valgrind --tool=callgrind`, connects MEMBERS (1000)
# clients to one room with parley-bench fanout (one publisher, RATE 10/s,
# 100-byte payloads), zeroes the counters once every client has joined,
# dumps them WINDOW (8) seconds later, while publishing still runs, and
# prints the loop's instructions per delivery: all of the process's
# instructions in the window divided by its calls of send() (one per
# delivery at this rate: a member never has two frames queued). CPU time
# on a shared machine moves with the load; instruction counts do not, so
# this is how two builds are compared. PROTOCOL=socketio measures
# /socket.io/. SCENARIO=chat runs parley-bench chat instead: ROOMS (200)
# rooms of 5, every member publishing (stored), RATE (200) messages/s in
# all, 40-byte payloads; there a send() is a delivery or a reply.
# VOLATILE=1 makes the chat publishes volatile (parley-bench --volatile:
# nothing stored), as ab.sh's VOLATILE=1 and the comparison with Node do.
# EXTRA: more parleyd options, VGOPTS more valgrind options (--cache-sim=yes). The dump stays in OUT (/tmp/cg.PID) for
# callgrind_annotate.
set -eu

PARLEYD=${1:?usage: callgrind.sh PARLEYD [BENCH]}
BENCH=${2:-$(dirname "$0")/../build/bench/parley-bench}
SCENARIO=${SCENARIO:-fanout}
MEMBERS=${MEMBERS:-1000}
ROOMS=${ROOMS:-200}
WINDOW=${WINDOW:-8}
PROTOCOL=${PROTOCOL:-parley}
OUT=${OUT:-/tmp/cg.$$}
EXTRA=${EXTRA:-}
VGOPTS=${VGOPTS:-}

mkdir -p "$OUT"
rm -rf "$OUT/data" && mkdir "$OUT/data"
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" $VGOPTS \
	"$PARLEYD" --host 127.0.0.1 --port 0 --data-dir "$OUT/data" --log-level info \
	--rate-messages 1000000 --rate-burst 1000000 $EXTRA 2>"$OUT/server.log" &
VG=$!
trap 'kill $VG 2>/dev/null || true' EXIT

port=
for _ in $(seq 600); do
	port=$(sed -n 's/.*msg=listening.* port=\([0-9]*\).*/\1/p' "$OUT/server.log" | head -1)
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "parleyd did not start" >&2; cat "$OUT/server.log" >&2; exit 1; }

dur=$((WINDOW + 6))
if [ "$SCENARIO" = chat ]; then
	RATE=${RATE:-200}
	conns=$((ROOMS * 5))
	set -- chat --rooms "$ROOMS" --members 5 --rate "$RATE" --size 40
	[ -n "${VOLATILE:-}" ] && set -- "$@" --volatile
else
	RATE=${RATE:-10}
	conns=$MEMBERS
	set -- fanout --rooms 1 --members "$MEMBERS" --publishers 1 --rate "$RATE" --size 100
fi
"$BENCH" "$@" --duration "$dur" --drain 1 --ramp 2000 --protocol "$PROTOCOL" \
	--url "ws://127.0.0.1:$port/ws" --series "$OUT/series.csv" --json --quiet \
	>"$OUT/bench.json" 2>"$OUT/bench.err" &
BP=$!

# Every client joined: the series' ready column reaches the connections.
for _ in $(seq 1200); do
	r=$(tail -n 1 "$OUT/series.csv" 2>/dev/null | cut -d, -f2)
	[ "${r:-0}" = "$conns" ] && break
	sleep 0.1
done
sleep 1
callgrind_control -z "$VG" >/dev/null
sleep "$WINDOW"
callgrind_control -d "$VG" >/dev/null
wait $BP || true
kill -INT $VG 2>/dev/null || true
wait $VG 2>/dev/null || true
trap - EXIT

dump=$OUT/callgrind.out.1
total=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$dump")
# Calls of send(), or of syscall() (parleyd's sendto), in the call graph
# ("cfn=(N) name" names a function the first time, "cfn=(N)" after that).
sends=$(awk '
	/^c?fn=\([0-9]+\) / { id = $1; sub(/^c?fn=/, "", id); name[id] = $2 }
	/^cfn=/ { id = $1; sub(/^cfn=/, "", id); tgt = name[id] }
	/^calls=/ { if (tgt == "send" || tgt == "__libc_send" || tgt == "__send" || tgt == "syscall") { split($1, a, "="); s += a[2] } }
	END { print s + 0 }' "$dump")
echo "dump=$dump scenario=$SCENARIO connections=$conns rate=$RATE window=${WINDOW}s protocol=$PROTOCOL"
echo "instructions=$total sends=$sends"
[ "$sends" -gt 0 ] && echo "instructions_per_send=$((total / sends))"
