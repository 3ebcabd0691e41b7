#!/usr/bin/env bash
# The .deb from build.sh, as dpkg and lintian see it: control data
# (version, Depends from dpkg-shlibdeps, conffiles, maintainer scripts),
# contents (paths, modes, owners, compressed man pages) and lintian.
#
# usage: tests/package/contents.sh OUT    (OUT: build.sh's folder)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 64; }
deb=$(pkg_deb "$1" 1)
command -v lintian >/dev/null || pkg_skip "lintian is not installed (.ci/deps --ci installs it)"
work=$(mktemp -d /tmp/eo-pkg-contents.XXXXXX)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
field() { dpkg-deb -f "$deb" "$1"; }

step "control"
[ "$(field Package)" = echo-oracled ] || pkg_die "Package: $(field Package)"
version=$(field Version)
dpkg-deb -x "$deb" "$work/root"
reported=$("$work/root/usr/sbin/echo-oracled" -V) || pkg_die "the packaged daemon does not run -V"
case $reported in
  *" ${version%-*}" | *" ${version%-*} "* | "${version%-*}") ;;
  *) pkg_die "-V says '$reported', the package is $version" ;;
esac
pkg_ok "Version $version, the daemon's -V: $reported"
depends=$(field Depends)
for lib in libc6 libevent-core libhttp-parser libconfig libsystemd0; do
  grep -q "$lib" <<<"$depends" || pkg_die "Depends lacks $lib: $depends"
done
pkg_ok "Depends (dpkg-shlibdeps): $depends"

dpkg-deb -e "$deb" "$work/control"
[ "$(cat "$work/control/conffiles")" = /etc/echo-oracled/echo-oracled.conf ] \
  || pkg_die "conffiles: $(cat "$work/control/conffiles")"
pkg_ok "conffiles: /etc/echo-oracled/echo-oracled.conf"
for script in postinst prerm postrm; do
  f=$work/control/$script
  [ -f "$f" ] || pkg_die "no $script"
  [ "$(stat -c %a "$f")" = 755 ] || pkg_die "$script is mode $(stat -c %a "$f"), not 755"
  sh -n "$f" || pkg_die "$script: syntax error"
  grep -q '^set -e' "$f" || pkg_die "$script does not set -e"
done
grep -q 'deb-systemd-helper.*enable' "$work/control/postinst" || pkg_die "postinst enables nothing"
grep -q 'deb-systemd-invoke' "$work/control/postinst" || pkg_die "postinst starts nothing"
grep -q 'deb-systemd-helper purge' "$work/control/postrm" || pkg_die "postrm purges no systemd state"
pkg_ok "postinst, prerm, postrm: present, 0755, sh -n clean, with the systemd helpers"

step "contents"
dpkg-deb -c "$deb" >"$work/list"
# "MODE OWNER PATH" for each expected file.
while read -r mode path; do
  grep -Eq "^$mode root/root +[0-9]+ [-0-9]+ [:0-9]+ \\./$path\$" "$work/list" \
    || pkg_die "no $mode root/root ./$path in the package"
done <<'FILES'
-rwxr-xr-x usr/sbin/echo-oracled
-rw-r--r-- lib/systemd/system/echo-oracled\.service
-rw-r--r-- lib/systemd/system/echo-oracled-echo\.socket
-rw-r--r-- lib/systemd/system/echo-oracled-oracle\.socket
-rw-r--r-- lib/systemd/system/echo-oracled-echo-udp\.socket
-rw-r--r-- usr/lib/sysusers\.d/echo-oracled\.conf
-rw-r--r-- etc/echo-oracled/echo-oracled\.conf
-rw-r--r-- usr/share/man/man8/echo-oracled\.8\.gz
-rw-r--r-- usr/share/man/man5/echo-oracled\.conf\.5\.gz
-rw-r--r-- usr/share/doc/echo-oracled/copyright
-rw-r--r-- usr/share/doc/echo-oracled/changelog\.Debian\.gz
-rw-r--r-- usr/share/doc/echo-oracled/changelog\.gz
-rw-r--r-- usr/share/doc/echo-oracled/README\.md
-rw-r--r-- usr/share/doc/echo-oracled/examples/echo-oracled\.conf
-rw-r--r-- usr/share/doc/echo-oracled/examples/echo-oracled-socket-only\.conf
-rw-r--r-- usr/share/doc/echo-oracled/examples/echo-oracled-low-ports\.conf
-rw-r--r-- usr/share/doc/echo-oracled/examples/haproxy-example\.cfg
-rw-r--r-- usr/share/lintian/overrides/echo-oracled
FILES
if grep -v ' root/root ' "$work/list"; then pkg_die "files not owned by root/root"; fi
if grep -E '^d' "$work/list" | grep -v '^drwxr-xr-x '; then pkg_die "directories not 0755"; fi
pkg_ok "every file in place with its mode, all root/root, directories 0755"
grep -q '^ExecStart=/usr/sbin/echo-oracled .*-c /etc/echo-oracled/echo-oracled.conf' \
  "$work/root/lib/systemd/system/echo-oracled.service" || pkg_die "the unit does not run /usr/sbin/echo-oracled"
pkg_ok "the unit runs /usr/sbin/echo-oracled -c /etc/echo-oracled/echo-oracled.conf"
for gz in usr/share/man/man8/echo-oracled.8.gz usr/share/man/man5/echo-oracled.conf.5.gz \
    usr/share/doc/echo-oracled/changelog.gz usr/share/doc/echo-oracled/changelog.Debian.gz; do
  gzip -t "$work/root/$gz" || pkg_die "$gz is no gzip file"
  # gzip -n: no name (FLG bit 3) and no time stamp (MTIME) in the header.
  header=$(od -An -tx1 -j3 -N5 "$work/root/$gz" | tr -d ' \n')
  [ "$header" = 0000000000 ] || pkg_die "$gz has a name or time stamp in its header (gzip -n)"
done
pkg_ok "man pages and changelogs: gzip, no name, no time stamp"
zcat "$work/root/usr/share/doc/echo-oracled/changelog.Debian.gz" | head -1 | grep -qF "echo-oracled ($version)" \
  || pkg_die "changelog.Debian.gz does not start with this version ($version)"
pkg_ok "changelog.Debian.gz starts at $version"

step "lintian"
status=0
lintian --fail-on error,warning --pedantic -I "$deb" >"$work/lintian" 2>&1 || status=$?
# Root runs it in CI; lintian only says that is not recommended.
grep -v 'root privileges' "$work/lintian" || true
[ "$status" -eq 0 ] || pkg_die "lintian reports errors or warnings (exit $status)"
pkg_ok "lintian: no error, no warning ($(grep -c '^[IPX]:' "$work/lintian" || true) info/pedantic tags)"

printf '\npackage contents: %d checks passed\n' "$pkg_checks"
