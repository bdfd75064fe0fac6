#!/usr/bin/env bash
# Unit check of charts.sh: draws every chart from bench/compare/testdata (a small real run)
# and checks each PNG and SVG was written and is what it claims to be.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cp "$here"/testdata/* "$out"/
"$here/charts.sh" "$out" 2>"$out/log" || { cat "$out/log"; exit 1; }
pass=0 fail=0
for c in cpu latency memory sweep series-fanout; do
  if [ "$(head -c 8 "$out/charts/$c.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
     [ "$(stat -c %s "$out/charts/$c.png")" -gt 10000 ] &&
     grep -q '<svg' "$out/charts/$c.svg"; then
    pass=$((pass + 1))
  else
    echo "chart $c: missing or not a PNG/SVG"; fail=$((fail + 1))
  fi
done
# A chart whose inputs are missing is skipped, not an error.
rm "$out"/sweep* "$out"/*.csv; rm -r "$out/charts"
"$here/charts.sh" "$out" 2>"$out/log" && [ ! -e "$out/charts/sweep.png" ] && [ -e "$out/charts/cpu.png" ] &&
  pass=$((pass + 1)) || { echo "partial input: wrong"; cat "$out/log"; fail=$((fail + 1)); }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
