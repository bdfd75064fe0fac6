#!/usr/bin/env bash
# Installs everything the tests need, builds, and runs every suite:
#   unit     Check unit tests (protocol, storage)
#   e2e      the real parleyd on ephemeral ports, real sockets, real SQLite
#   browser  the chat page in headless Chromium (playwright-core)
#   sio      Socket.IO clients (the real socket.io-client from npm) on /socket.io/
#   deploy   systemd-analyze on the unit
#   package  the npm client packed, installed and used against parleyd
# then scripts/package.sh (the Debian package in a clean root; PARLEY_SKIP_PACKAGE=1 skips it),
# then the unit and e2e suites again under AddressSanitizer + UBSan (with
# LeakSanitizer: every parleyd a test starts must exit 0 with no leak), then
# the libFuzzer harnesses (decoder, config parser) for a short run each.
# PARLEY_SKIP_SANITIZE=1 skips the sanitizer pass; PARLEY_FUZZ_SECONDS sets
# the fuzzing time per harness (default 45; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --test
if [ ! -d tests/browser/node_modules/playwright-core ] ||
   [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/sio/node_modules/socket.io-client ] ||
   [ tests/sio/package-lock.json -nt tests/sio/node_modules/.package-lock.json ]; then
  (cd tests/sio && npm ci --no-audit --no-fund --loglevel=error)
fi

[ -f build/build.ninja ] || meson setup build >/dev/null
meson configure build -Dtests=true >/dev/null
ninja -C build
meson test -C build --print-errorlogs --num-processes 2
# The .deb built and installed into a clean Debian 12 root (needs root and Debian's mirror).
[ "${PARLEY_SKIP_PACKAGE:-0}" = 1 ] || scripts/package.sh

if [ "${PARLEY_SKIP_SANITIZE:-0}" != 1 ]; then
  [ -f build-asan/build.ninja ] ||
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
  ninja -C build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C build-asan --suite unit --suite e2e --suite sio --print-errorlogs --num-processes 2
fi

fuzz_secs=${PARLEY_FUZZ_SECONDS:-45}
if [ "$fuzz_secs" != 0 ]; then
  tests/fuzz/run.sh "$fuzz_secs"
fi

