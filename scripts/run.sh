#!/usr/bin/env bash
# Installs what parleyd needs, builds it, and runs it in the foreground on
# http://localhost:8080 (WebSocket endpoint /ws, the chat client at /),
# keeping its database in ./data. Extra arguments go to parleyd, e.g.
#   scripts/run.sh --port 9000 --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[ -f build/build.ninja ] || meson setup build -Dtests=false >/dev/null
ninja -C build server/parleyd bench/parley-bench >/dev/null
exec build/server/parleyd --port 8080 --data-dir ./data --web-root ./web-client --admin-root ./web-admin "$@"
