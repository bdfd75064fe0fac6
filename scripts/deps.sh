#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs (as root, with apt-get).
#   scripts/deps.sh          what building and running parleyd needs
#   scripts/deps.sh --test   also what the test suites need (check, pytest,
#                            nginx, openssl, clang (fuzzers), chromium, Node.js
#                            for the browser tests, libfaketime and strace for
#                            tests/e2e/test_edges.py, redis-server for the
#                            cluster tests)
#   scripts/deps.sh --package   also what scripts/package.sh needs (debhelper,
#                            lintian, debootstrap, python3, systemd-analyze)
# Installs nothing when everything is already there.
set -euo pipefail

pkgs=(build-essential pkg-config meson ninja-build
      libwebsockets-dev libwebsockets-evlib-ev libev-dev
      libssl-dev libjansson-dev libsqlite3-dev sqlite3 curl ca-certificates
      libhiredis-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(check python3 python3-pytest chromium nodejs nginx openssl systemd clang
             gnuplot-nox jq libfaketime strace redis-server)
fi
if [ "${1:-}" = "--package" ]; then
  pkgs+=(debhelper dpkg-dev fakeroot lintian debootstrap python3 systemd)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "scripts/deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then
  # Debian's nodejs ships npm separately; NodeSource's includes it.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  # The browser tests need Node.js 20 or newer (playwright-core, and Node's
  # WebSocket client). Debian 12's own nodejs is 18; machines of this kind
  # get 20 from the NodeSource apt source that comes with them.
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    echo "scripts/deps.sh: the browser tests need Node.js >= 20 (found ${major}); install it from NodeSource or another apt source" >&2
    exit 1
  fi
fi

