#!/usr/bin/env bash
# Builds the Debian package and tests it in a clean Debian 12 root (run as root, on Debian 12):
#   1. dpkg-buildpackage -us -uc -b in a copy of the tree; lintian (no errors, no warnings that
#      debian/parley.lintian-overrides does not explain);
#   2. a fresh root from a cached `debootstrap --variant=minbase bookworm` tarball; apt installs the
#      .deb there with its dependencies from Debian's mirror;
#   3. checks the files, the conffile, the `parley` user, the unit (systemd-analyze verify) and
#      `parleyd --check-config -c /etc/parley/parley.conf`;
#   4. starts parleyd from the installed config as `parley`, the way the unit does (systemd does
#      not run in a chroot): fetches the page, does a WebSocket round trip, stops it with SIGTERM;
#   5. keeps a local edit of the conffile over a reinstall; remove keeps the config and data;
#      purge leaves nothing of the package behind but the `parley` user.
# Everything listens on 127.0.0.1 only. Prints one line per check and "N passed, N failed";
# exits non-zero on any failure.
#   PARLEY_PACKAGE_WORK   scratch directory (default /var/tmp/parley-package)
#   PARLEY_PACKAGE_CACHE  bootstrap tarball and apt caches (default /var/cache/parley-package)
#   PARLEY_DEBIAN_MIRROR  (default http://deb.debian.org/debian)
#   PARLEY_PACKAGE_KEEP=1 keep the root afterwards for a look around
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
work=${PARLEY_PACKAGE_WORK:-/var/tmp/parley-package}
cache=${PARLEY_PACKAGE_CACHE:-/var/cache/parley-package}
mirror=${PARLEY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${PARLEY_DEBIAN_SECURITY:-${mirror%/debian}/debian-security}
root=$work/root
log=$work/package.log
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)
t0=$(date +%s)

if [ "$(id -u)" != 0 ]; then
  echo "scripts/package.sh: run as root (debootstrap, chroot)" >&2
  exit 2
fi
scripts/deps.sh --package
mkdir -p "$work"
# One run at a time: they share the work directory and the root.
exec 9>"$work/lock"
flock -n 9 || { echo "scripts/package.sh: another run holds $work/lock" >&2; exit 2; }

passed=0 failed=0 parleyd_pid=
ok()   { passed=$((passed + 1)); echo "ok   $1"; }
bad()  { failed=$((failed + 1)); echo "FAIL $1"; [ -z "${2:-}" ] || printf '     %s\n' "$2" | head -n 40; }
# check WHAT CMD...: one check; the command's output goes to the log (and is shown on failure).
check() {
  local what=$1 out; shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what" "$out"; fi
  printf '== %s\n%s\n' "$what" "$out" >>"$log"
}
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root "$@"; }
umount_root() {
  local m
  for m in proc dev/pts; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount "$root/$m" || umount -l "$root/$m"; fi
  done
}
# Never follows a bind mount out of the root: nothing is mounted below it when this runs, and
# --one-file-system is a second guard.
remove_root() {
  umount_root
  if findmnt -rn -o TARGET | grep -q "^$root/"; then
    echo "scripts/package.sh: something is still mounted under $root; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}
finish() {
  local rc=$?
  if [ -n "$parleyd_pid" ] && kill -0 "$parleyd_pid" 2>/dev/null; then kill -KILL "$parleyd_pid" || true; fi
  umount_root
  [ "${PARLEY_PACKAGE_KEEP:-0}" = 1 ] || [ ! -d "$root" ] || remove_root || true
  [ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1   # an unexpected error counts as a failure
  echo "package.sh: $passed passed, $failed failed ($(( $(date +%s) - t0 )) s; log: $log)"
  [ "$failed" = 0 ] || exit 1
}
trap finish EXIT
# fatal WHAT: a step everything after it needs has failed.
fatal() { bad "$1" "${2:-}"; exit 1; }

mkdir -p "$work" "$cache/apt-archives" "$cache/apt-lists"
remove_root 2>/dev/null || true
: >"$log"

# ---------------------------------------------------------------- 1. build
rm -rf "$work/build"
mkdir -p "$work/build/parley"
# The working tree as it is (tracked and new files, not ignored ones such as build dirs).
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z -co --exclude-standard | (cd "$src" && tar --null -T - -cf -) |
    tar -xf - -C "$work/build/parley"
else
  tar -C "$src" --exclude='./build*' --exclude=node_modules -cf - . | tar -xf - -C "$work/build/parley"
fi
if ! (cd "$work/build/parley" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
  fatal "dpkg-buildpackage -us -uc -b" "$(tail -n 30 "$work/build.log")"
fi
ok "dpkg-buildpackage -us -uc -b"
arch=$(dpkg --print-architecture)
deb=$work/build/parley_${version}_${arch}.deb
[ -f "$deb" ] || fatal "builds parley_${version}_${arch}.deb" "$(ls "$work/build")"
ok "builds $(basename "$deb")"
check "debian/changelog version is the meson project version ($version)" \
  test "$(cd "$work/build/parley" && dpkg-parsechangelog -S Version)" = "$version"
# A later version of the same tree, to test an upgrade over the first.
next=${version}+pkgtest1
mv "$deb" "$work/"
deb=$work/$(basename "$deb")
{ printf 'parley (%s) unstable; urgency=medium\n\n  * Upgrade test of scripts/package.sh.\n\n -- %s  %s\n\n' \
    "$next" "$(cd "$work/build/parley" && dpkg-parsechangelog -S Maintainer)" "$(date -R)"
  cat "$work/build/parley/debian/changelog"; } >"$work/changelog.next"
mv "$work/changelog.next" "$work/build/parley/debian/changelog"
if ! (cd "$work/build/parley" && dpkg-buildpackage -us -uc -b) >"$work/build-next.log" 2>&1; then
  fatal "dpkg-buildpackage of $next (for the upgrade test)" "$(tail -n 30 "$work/build-next.log")"
fi
deb_next=$work/build/parley_${next}_${arch}.deb
check "builds $(basename "$deb_next") (for the upgrade test)" test -f "$deb_next"
check "the build log has no warnings" sh -c "! grep -iE '(^|: )warning' '$work/build.log'"
check "lintian: no errors, no unexplained warnings" \
  lintian --allow-root --fail-on error,warning --pedantic "$deb"

# ---------------------------------------------------------------- 2. a clean Debian 12 root
tarball=$cache/bookworm-minbase-$arch.tar
# Refreshed monthly: apt upgrades what the package needs anyway, but the base should not drift far
# from a freshly installed Debian 12.
if [ -f "$tarball" ] && [ -n "$(find "$tarball" -mtime +30)" ]; then rm -f "$tarball"; fi
if [ ! -f "$tarball" ]; then
  echo "scripts/package.sh: bootstrapping Debian 12 into $tarball (once)" >&2
  rm -rf "$work/bootstrap"
  if ! debootstrap --variant=minbase bookworm "$work/bootstrap" "$mirror" >"$work/debootstrap.log" 2>&1; then
    for m in proc sys dev/pts; do   # what a failed debootstrap may leave mounted
      if mountpoint -q "$work/bootstrap/$m" 2>/dev/null; then umount -l "$work/bootstrap/$m"; fi
    done
    rm -rf --one-file-system "$work/bootstrap"
    fatal "debootstrap --variant=minbase bookworm" "$(tail -n 20 "$work/debootstrap.log")"
  fi
  tar -C "$work/bootstrap" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$work/bootstrap"
fi
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
# As in any chroot: maintainer scripts must not try to start services.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
# apt's downloads and lists from earlier runs: the root stays clean, reruns skip the downloads.
cp -a "$cache/apt-lists/." "$root/var/lib/apt/lists/" 2>/dev/null || true
cp -a "$cache/apt-archives/." "$root/var/cache/apt/archives/" 2>/dev/null || true
if ! in_root apt-get update -q >>"$log" 2>&1; then fatal "apt-get update in the root" "$(tail -n 20 "$log")"; fi
cp "$deb" "$root/tmp/"
touch "$work/stamp"; sleep 1
if ! in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "/tmp/$(basename "$deb")" >"$work/install.log" 2>&1; then
  fatal "apt-get install ./$(basename "$deb") in a clean Debian 12 root" "$(tail -n 30 "$work/install.log")"
fi
ok "apt-get install ./$(basename "$deb") in a clean Debian 12 root (dependencies from the mirror)"
cp -a "$root/var/lib/apt/lists/." "$cache/apt-lists/" 2>/dev/null || true
cp -a "$root/var/cache/apt/archives/"*.deb "$cache/apt-archives/" 2>/dev/null || true
check "no warnings or errors from the maintainer scripts" \
  sh -c "! grep -E '^(W|E):|warning|error|Failed' '$work/install.log' | grep -v 'policy-rc.d'"

# ---------------------------------------------------------------- 3. what was installed
check "dpkg: parley $version installed" \
  test "$(in_root dpkg-query -W -f='${Status} ${Version}' parley)" = "install ok installed $version"
for f in /usr/bin/parleyd /usr/bin/parley-bench; do check "$f is executable" test -x "$root$f"; done
for f in /usr/share/man/man8/parleyd.8.gz /lib/systemd/system/parleyd.service \
         /lib/systemd/system/parleyd.service.d/debian.conf /usr/lib/sysusers.d/parley.conf \
         /usr/share/doc/parley/copyright /usr/share/doc/parley/README.Debian \
         /usr/share/doc/parley/examples/nginx.conf; do
  check "$f" test -s "$root$f"
done
# dh_compress gzips documents over 4 kB, so whether README.md has a .gz depends on its size.
for f in README.md operations.md configuration.md protocol.md client.md security.md storage.md; do
  check "/usr/share/doc/parley/$f[.gz]" sh -c "test -s '$root/usr/share/doc/parley/$f' || test -s '$root/usr/share/doc/parley/$f.gz'"
done
check "the man page renders" sh -c "zcat '$root/usr/share/man/man8/parleyd.8.gz' | grep -q '^\.TH PARLEYD'"
webok=1
for f in "$src"/web-client/*; do cmp -s "$f" "$root/usr/share/parley/web-client/$(basename "$f")" || webok=0; done
check "/usr/share/parley/web-client holds web-client/ as it is in the tree" test "$webok" = 1
check "/etc/parley/parley.conf is a conffile" \
  sh -c "chroot '$root' dpkg-query -W -f='\${Conffiles}\n' parley | grep -q '^ /etc/parley/parley.conf '"
check "/etc/parley/parley.conf is deploy/parley.conf (its web_root and admin_root comments showing /usr/share)" \
  sh -c "sed -e 's|^#web_root = .*|#web_root = /usr/share/parley/web-client|' \
             -e 's|^#admin_root = .*|#admin_root = /usr/share/parley/web-admin|' '$src/deploy/parley.conf' |
         cmp - '$root/etc/parley/parley.conf'"
check "/usr/share/parley/web-admin holds the dashboard" test -f "$root/usr/share/parley/web-admin/index.html"
check "parleyd's built-in web_root is the installed web client (--help)" \
  sh -c "chroot '$root' parleyd --help | grep -q '(default /usr/share/parley/web-client)' && test -f '$root/usr/share/parley/web-client/index.html'"
check "parleyd --version says $version" sh -c "chroot '$root' parleyd --version | grep -qx 'parleyd $version'"
check "parleyd --check-config -c /etc/parley/parley.conf" \
  sh -c "chroot '$root' parleyd --check-config -c /etc/parley/parley.conf | grep -q ': ok$'"
check "parley-bench runs (its libraries resolve)" in_root parley-bench connect --help
pw=$(in_root getent passwd parley || true)
check "the parley system user exists (uid < 1000, home /var/lib/parley, no login shell)" \
  sh -c "echo '$pw' | awk -F: '\$3 > 0 && \$3 < 1000 && \$6 == \"/var/lib/parley\" && \$7 ~ /nologin\$/ { f = 1 } END { exit !f }'"
wants=$root/etc/systemd/system/multi-user.target.wants/parleyd.service
check "parleyd.service is installed but not enabled (configure first)" sh -c "! test -L '$wants'"
check "systemctl enable parleyd (as an operator would, after configuring)" \
  sh -c "chroot '$root' systemctl enable parleyd.service && test -L '$wants'"
# The unit as systemd would load it (with Debian's drop-in); any output at all is a failure, as in
# the deploy suite.
check "systemd-analyze verify parleyd.service (in the root)" \
  sh -c "out=\$(chroot '$root' systemd-analyze verify --man=no /lib/systemd/system/parleyd.service 2>&1); printf '%s' \"\$out\"; test -z \"\$out\""
unit=$(cat "$root/lib/systemd/system/parleyd.service" "$root/lib/systemd/system/parleyd.service.d/debian.conf")
for kv in "User=parley" "DynamicUser=no" "StateDirectory=parley" "ExecStart=/usr/bin/parleyd -c /etc/parley/parley.conf" \
          "NoNewPrivileges=yes" "ProtectSystem=strict" "CapabilityBoundingSet=" "SystemCallFilter=@system-service"; do
  check "the unit has $kv" sh -c "printf '%s\n' \"\$1\" | grep -qx -- \"\$2\"" _ "$unit" "$kv"
done

# ---------------------------------------------------------------- 4. parleyd as the unit runs it
# What systemd does before ExecStart: StateDirectory/RuntimeDirectory/LogsDirectory (mode 0750,
# owned by User=), UMask=0027, no capabilities, NoNewPrivileges. The installed config unchanged;
# only the address is overridden, to stay on loopback and on a free port.
for d in /var/lib/parley /run/parley /var/log/parley; do
  in_root install -d -o parley -g parley -m 0750 "$d"
done
# Emptied here, not by the job's redirection, which may happen after the loop below first reads.
: >"$work/parleyd.log"
chroot "$root" env -i PATH=/usr/bin:/bin LC_ALL=C.UTF-8 sh -c 'umask 0027; exec setpriv --reuid=parley --regid=parley --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all /usr/bin/parleyd -c /etc/parley/parley.conf --host 127.0.0.1 --port 0' \
  >>"$work/parleyd.log" 2>&1 &
parleyd_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*msg=listening\b.*\bport=\([0-9]*\).*/\1/p' "$work/parleyd.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$parleyd_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || fatal "parleyd starts from /etc/parley/parley.conf as parley" "$(cat "$work/parleyd.log")"
ok "parleyd starts from /etc/parley/parley.conf as parley (port $port)"
check "parleyd runs as the parley uid" test "$(stat -c %u "/proc/$parleyd_pid")" = "$(in_root id -u parley)"
check "GET / serves the installed chat page" \
  sh -c "curl -sSf --max-time 5 http://127.0.0.1:$port/ | cmp -s - '$src/web-client/index.html'"
check "GET /parley.js serves the installed client" \
  sh -c "curl -sSf --max-time 5 http://127.0.0.1:$port/parley.js | cmp -s - '$src/web-client/parley.js'"
check "WebSocket round trip: hello, join, publish, echo, history" \
  python3 - "$port" "$src/tests/e2e" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from wsclient import WSClient
c = WSClient("127.0.0.1", int(sys.argv[1]), path="/ws", timeout=5.0)
def expect(pred, what):
    f = c.recv_json()
    if not pred(f):
        raise SystemExit("%s: got %r" % (what, f))
    return f
expect(lambda f: f.get("type") == "welcome", "welcome")
c.send_json({"type": "hello", "id": 1, "name": "pkgtest"})
expect(lambda f: f.get("id") == 1 and f.get("ok") and f["data"]["user"] == "pkgtest", "hello reply")
c.send_json({"type": "join", "id": 2, "room": "deb"})
expect(lambda f: f.get("id") == 2 and f.get("ok") and f["data"]["seq"] == 0, "join reply")
c.send_json({"type": "publish", "id": 3, "room": "deb", "data": {"text": "from the package"}, "durable": True})
got = [c.recv_json(), c.recv_json()]
msg = [f for f in got if f.get("type") == "message"]
rep = [f for f in got if f.get("type") == "reply"]
if not (msg and msg[0]["data"] == {"text": "from the package"} and msg[0]["from"] == "pkgtest"
        and rep and rep[0].get("ok") and rep[0]["data"]["seq"] == 1):
    raise SystemExit("publish: got %r" % got)
c.send_json({"type": "history", "id": 4, "room": "deb"})
expect(lambda f: f.get("id") == 4 and [m["seq"] for m in f["data"]["messages"]] == [1], "history reply")
c.send_close()
print("round trip ok")
EOF
check "parley.db written in /var/lib/parley, owned by parley" \
  test "$(in_root stat -c %U /var/lib/parley/parley.db 2>&1)" = parley
kill -TERM "$parleyd_pid"
rc=0; wait "$parleyd_pid" || rc=$?
parleyd_pid=
check "parleyd exits 0 on SIGTERM" test "$rc" = 0
rm -rf "$root/run/parley"   # systemd removes RuntimeDirectory= when the service stops
check "parleyd logged no warnings or errors" sh -c "! grep -E 'level=(warn|error)' '$work/parleyd.log'"

# ---------------------------------------------------------------- 5. conffile, remove, purge
echo "# a local edit" >>"$root/etc/parley/parley.conf"
cp "$deb_next" "$root/tmp/"
check "upgrade to $next (apt-get install ./$(basename "$deb_next"))" \
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb_next")"
check "dpkg: parley $next installed" \
  test "$(in_root dpkg-query -W -f='${Status} ${Version}' parley)" = "install ok installed $next"
check "the local edit of the conffile survives the upgrade" grep -qx '# a local edit' "$root/etc/parley/parley.conf"
check "the upgrade keeps the data, the user and the operator's enable" \
  sh -c "test -f '$root/var/lib/parley/parley.db' && chroot '$root' getent passwd parley >/dev/null && test -L '$wants'"
check "apt-get remove parley" in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q parley
check "remove keeps /etc/parley/parley.conf (with the edit) and /var/lib/parley/parley.db" \
  sh -c "grep -qx '# a local edit' '$root/etc/parley/parley.conf' && test -f '$root/var/lib/parley/parley.db'"
check "remove takes the binaries" sh -c "! test -e '$root/usr/bin/parleyd'"
check "apt-get purge parley" in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q parley
for d in /etc/parley /var/lib/parley /var/log/parley /usr/share/parley /usr/share/doc/parley \
         /lib/systemd/system/parleyd.service.d /etc/systemd/system/multi-user.target.wants/parleyd.service; do
  check "purge removed $d" sh -c "! test -e '$root$d' && ! test -L '$root$d'"
done
check "dpkg knows nothing of parley after the purge" sh -c "! chroot '$root' dpkg-query -W -f='\${Status}' parley 2>/dev/null | grep -q ."
left=$(cd "$root" && find . -xdev \( -path ./proc -o -path ./tmp \) -prune -o -newer "$work/stamp" -print |
  grep -i parley || true)
check "nothing named parley is left after the purge (the parley user is kept, by design)" test -z "$left"
[ -z "$left" ] || printf '     left: %s\n' $left
check "the parley user is kept" in_root getent passwd parley
