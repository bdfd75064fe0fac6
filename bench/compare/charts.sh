#!/usr/bin/env bash
# Draws the charts of a bench/compare/run.sh result directory with gnuplot (Debian's
# gnuplot-nox). Reads OUT/*.json (and OUT/*.csv time series, OUT/sweep*.json), writes PNG
# and SVG files to OUT/charts/ (or CHARTS=dir):
#   cpu          server CPU per delivery (user and total), fan-out and chat, per server
#                (servers: parleyd, parleyd-sio = parleyd's /socket.io/, ws, socketio)
#   latency      p50 and p99 delivery latency, fan-out and chat, per server
#   memory       idle server RSS per connection, per server
#   sweep        saturated fan-out: deliveries/s and p99 against the number of connections
#   series-fanout  deliveries/s and p99 per second during the fan-out run, per server
# A chart whose inputs are missing is skipped with a note; the others are still drawn.
#
# Usage: bench/compare/charts.sh OUT [TITLE]   (TITLE default: OUT/run.txt, written by run.sh)
set -euo pipefail

OUT=${1:?usage: charts.sh OUT [TITLE]}
TITLE=${2:-$(cat "$OUT/run.txt" 2>/dev/null || true)}
CHARTS=${CHARTS:-$OUT/charts}
command -v gnuplot >/dev/null || { echo "charts.sh: gnuplot is required (apt-get install gnuplot-nox)" >&2; exit 1; }
command -v jq >/dev/null || { echo "charts.sh: jq is required (apt-get install jq)" >&2; exit 1; }
mkdir -p "$CHARTS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

SERVERS="parleyd parleyd-sio ws socketio"
LABEL_parleyd="Parley"; LABEL_parleyd_sio="Parley /socket.io/"; LABEL_ws="ws (Node)"
LABEL_socketio="Socket.IO (Node)"
COLOR_parleyd="#2e7d32"; COLOR_parleyd_sio="#6a1b9a"; COLOR_ws="#1565c0"; COLOR_socketio="#ef6c00"
label() { local v="LABEL_${1//-/_}"; echo "${!v}"; }
color() { local v="COLOR_${1//-/_}"; echo "${!v}"; }

# val TAG SERVER FIELD -> number, or NaN (gnuplot leaves a gap) when absent or -1
val() {
  local f="$OUT/$1.$2.json"
  [ -s "$f" ] || { echo NaN; return; }
  jq -r --arg k "$3" 'if (.[$k] // -1) == -1 then "NaN" else .[$k] end' "$f" 2>/dev/null || echo NaN
}

# Common look: one style for every chart, PNG for the docs and SVG for zooming in.
common='set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set key top left
set xtics nomirror
set ytics nomirror
set linetype 1 lc rgb "#2e7d32"
set linetype 2 lc rgb "#6a1b9a"
set linetype 3 lc rgb "#1565c0"
set linetype 4 lc rgb "#ef6c00"'
sub=${TITLE:+\\n{/*0.8 $TITLE\}}

# render NAME GNUPLOT-BODY: the body is drawn once as PNG and once as SVG.
render() {
  local name=$1 body=$2
  gnuplot <<EOF
$common
set terminal pngcairo size 900,520 font "DejaVu Sans,11" enhanced
set output "$CHARTS/$name.png"
$body
set terminal svg size 900,520 font "DejaVu Sans,11" enhanced dynamic
set output "$CHARTS/$name.svg"
replot
EOF
  echo "charts.sh: $CHARTS/$name.png" >&2
}

have() { ls "$OUT"/$1 >/dev/null 2>&1; }

# The servers with a fanout or chat result (gnuplot refuses a histogram
# column with no valid point), and the clustered bars' plot clause for them.
present=()
for s in $SERVERS; do
  if [ -s "$OUT/fanout.$s.json" ] || [ -s "$OUT/chat.$s.json" ]; then present+=("$s"); fi
done
bars() { # bars DATFILE -> "file" using 2:xtic(1) title "A", '' using 3 title "B", ...
  local i=2 out="\"$1\" using 2:xtic(1)"
  for s in "${present[@]}"; do
    [ $i = 2 ] && out+=" title \"$(label "$s")\"" || out+=", '' using $i title \"$(label "$s")\""
    i=$((i + 1))
  done
  echo "$out"
}
# row NAME TAG FIELD -> one line of a bars data file
datrow() {
  local line=$1 s
  for s in "${present[@]}"; do line+=" $(val "$2" "$s" "$3")"; done
  echo "$line"
}

# ---- cpu: µs of server CPU per delivery ----
if have 'fanout.*.json' || have 'chat.*.json'; then
  {
    for m in "\"fan-out user\":fanout:server_user_us_per_delivery" "\"fan-out total\":fanout:server_total_us_per_delivery" \
             "\"chat user\":chat:server_user_us_per_delivery" "\"chat total\":chat:server_total_us_per_delivery"; do
      IFS=: read -r name tag field <<<"$m"
      datrow "$name" "$tag" "$field"
    done
  } >"$tmp/cpu.dat"
  render cpu "set title \"Server CPU per delivered message (lower is better)$sub\"
set ylabel \"µs per delivery (log scale)\"
set logscale y
set yrange [0.05:*]
plot $(bars "$tmp/cpu.dat")"
else
  echo "charts.sh: no fanout/chat results: cpu skipped" >&2
fi

# ---- latency: p50 / p99 ----
if have 'fanout.*.json' || have 'chat.*.json'; then
  {
    for m in "\"fan-out p50\":fanout:latency_p50_ms" "\"fan-out p99\":fanout:latency_p99_ms" \
             "\"chat p50\":chat:latency_p50_ms" "\"chat p99\":chat:latency_p99_ms"; do
      IFS=: read -r name tag field <<<"$m"
      datrow "$name" "$tag" "$field"
    done
  } >"$tmp/lat.dat"
  render latency "set title \"Delivery latency (lower is better)$sub\"
set ylabel \"ms (log scale)\"
set logscale y
set yrange [0.05:*]
plot $(bars "$tmp/lat.dat")"
fi

# ---- memory: idle bytes per connection ----
if have 'idle.*.json'; then
  {
    for s in $SERVERS; do
      if [ -s "$OUT/idle.$s.json" ]; then echo "\"$(label "$s")\" $(val idle "$s" server_rss_bytes_per_conn)"; fi
    done
  } >"$tmp/mem.dat"
  render memory "set title \"Idle server memory per connection (lower is better)$sub\"
set ylabel \"bytes of RSS per idle connection\"
set yrange [0:*]
set key off
set style histogram rowstacked
plot \"$tmp/mem.dat\" using 2:xtic(1) lc rgb \"#2e7d32\" notitle, '' using 0:2:(sprintf(\"%.0f\",\$2)) with labels offset 0,0.7 notitle"
else
  echo "charts.sh: no idle results: memory skipped" >&2
fi

# ---- sweep: saturated fan-out against connections ----
if have 'sweep*.json'; then
  plot_tp=() plot_p99=()
  for s in $SERVERS; do
    : >"$tmp/sweep.$s.dat"
    for f in "$OUT"/sweep*."$s".json; do
      [ -s "$f" ] || continue
      jq -r '"\(.connections // "NaN") \(.deliveries_per_s // "NaN") \(if (.latency_p99_ms // -1) == -1 then "NaN" else .latency_p99_ms end)"' "$f"
    done | sort -n >"$tmp/sweep.$s.dat"
    [ -s "$tmp/sweep.$s.dat" ] || continue
    plot_tp+=("\"$tmp/sweep.$s.dat\" using 1:(\$2/1000) with linespoints lw 2 pt 7 lc rgb \"$(color "$s")\" title \"$(label "$s") deliveries/s\"")
    plot_p99+=("\"$tmp/sweep.$s.dat\" using 1:3 axes x1y2 with linespoints lw 1 dt 2 pt 6 lc rgb \"$(color "$s")\" title \"$(label "$s") p99\"")
  done
  if [ ${#plot_tp[@]} -gt 0 ]; then
    all=$(IFS=,; echo "${plot_tp[*]},${plot_p99[*]}")
    render sweep "set title \"Saturated fan-out (one room, one publisher) against connections$sub\"
set style data linespoints
set xlabel \"connections (members of the room)\"
set ylabel \"thousand deliveries/s (solid)\"
set y2label \"p99 latency, ms (dashed, log scale)\"
set logscale y2
set y2tics nomirror
set yrange [0:*]
set key outside bottom center horizontal maxrows 2
plot $all"
  fi
else
  echo "charts.sh: no sweep results: sweep skipped" >&2
fi

# ---- series: the fan-out run second by second ----
if have 'fanout.*.csv'; then
  plots=()
  for s in $SERVERS; do
    f="$OUT/fanout.$s.csv"
    [ -s "$f" ] || continue
    plots+=("\"$f\" using 1:4 with lines lw 2 lc rgb \"$(color "$s")\" title \"$(label "$s") deliveries/s\"")
    plots+=("\"$f\" using 1:6 axes x1y2 with lines dt 2 lc rgb \"$(color "$s")\" title \"$(label "$s") p99\"")
  done
  all=$(IFS=,; echo "${plots[*]}")
  render series-fanout "set title \"Fan-out run, second by second$sub\"
set datafile separator \",\"
set style data lines
set xlabel \"seconds since the bench started\"
set ylabel \"deliveries/s (solid)\"
set y2label \"p99 latency of that second, ms (dashed, log scale)\"
set logscale y2
set y2tics nomirror
set yrange [0:*]
set key outside bottom center horizontal maxrows 2
plot $all"
fi
