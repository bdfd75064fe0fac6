#!/bin/sh
# run.sh [SECONDS] - build the libFuzzer harnesses with clang and run each for
# SECONDS (default 60) on a copy of its seed corpus in a temporary directory.
# Exits non-zero if a harness crashes, printing the crashing input's path
# (kept, with the whole work directory). Needs clang with the libFuzzer
# runtime (Debian 12: apt-get install clang libclang-rt-14-dev),
# libjansson-dev and libssl-dev. KEEP=1 keeps the work directory (and the grown corpora)
# after a clean run too.
set -eu

secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CC=${CC:-clang}
work=$(mktemp -d /tmp/parley-fuzz-XXXXXX)

flags="-g -O1 -std=gnu11 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined"
flags="$flags -fno-sanitize-recover=undefined -DPARLEY_VERSION=\"0.1.0\""
jansson_cflags=$(pkg-config --cflags jansson 2>/dev/null || true)
jansson_libs=$(pkg-config --libs jansson 2>/dev/null || echo -ljansson)

echo "== building in $work"
# shellcheck disable=SC2086
$CC $flags $jansson_cflags -I"$root/protocol" -o "$work/fuzz_decode" \
	"$here/fuzz_decode.c" "$root"/protocol/*.c $jansson_libs
# shellcheck disable=SC2086
$CC $flags $jansson_cflags -I"$root/protocol" -o "$work/fuzz_api" \
	"$here/fuzz_api.c" "$root"/protocol/*.c $jansson_libs
# shellcheck disable=SC2086
$CC $flags -I"$root/server" -I"$root/common" -I"$root/cluster" -o "$work/fuzz_config" "$here/fuzz_config.c" \
	"$root/server/config.c" "$root/server/util.c" "$root/server/log.c" "$root/server/netaddr.c" \
	"$root/common/xalloc.c" "$root/cluster/rurl.c" -lwebsockets # netaddr.c (listen addresses) reads lws headers; rurl.c: --cluster
# shellcheck disable=SC2086
$CC $flags $jansson_cflags -I"$root/server" -I"$root/common" -I"$root/protocol" \
	-o "$work/fuzz_token" "$here/fuzz_token.c" "$root/server/token.c" \
	"$root/server/util.c" "$root/common/xalloc.c" "$root/protocol/validate.c" \
	"$root/protocol/utf8.c" $jansson_libs -lcrypto

# shellcheck disable=SC2086
$CC $flags $jansson_cflags -I"$root/protocol" -I"$root/protocol/sio" -o "$work/fuzz_sio" \
	"$here/fuzz_sio.c" "$root"/protocol/*.c "$root"/protocol/sio/*.c $jansson_libs

status=0
for h in decode config token sio api; do
	mkdir -p "$work/corpus-$h" "$work/crashes-$h"
	cp "$here/corpus/$h"/* "$work/corpus-$h/"
	echo "== fuzz_$h for ${secs}s ($(ls "$work/corpus-$h" | wc -l) seeds)"
	# -timeout: a single input taking 10 s is a hang worth reporting.
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	     "$work/fuzz_$h" -max_total_time="$secs" -max_len=8192 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -dict="$here/$h.dict" \
		-artifact_prefix="$work/crashes-$h/" "$work/corpus-$h" \
		>"$work/fuzz_$h.log" 2>&1; then
		status=1
		tail -n 60 "$work/fuzz_$h.log"
		for f in "$work/crashes-$h"/*; do
			[ -e "$f" ] && echo "CRASH: fuzz_$h: input $f (replay: $work/fuzz_$h $f)"
		done
	else
		grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE' \
			"$work/fuzz_$h.log" || true
		echo "   corpus grew to $(ls "$work/corpus-$h" | wc -l) inputs"
	fi
done

if [ $status -ne 0 ] || [ "${KEEP:-0}" = 1 ]; then
	echo "== work directory kept: $work"
else
	rm -rf "$work"
fi
exit $status
