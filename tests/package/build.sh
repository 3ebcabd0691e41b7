#!/usr/bin/env bash
# Builds the .deb as the README says, from a Release build configured for
# /usr, twice: revision 1, and revision 2 of the same sources, the "newer
# build" that systemd.sh upgrades to. Both land in OUT/.
#
# usage: tests/package/build.sh SOURCE_DIR OUT
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR OUT" >&2; exit 64; }
src=$1 out=$2
for tool in dpkg-deb dpkg-shlibdeps gzip; do
  command -v "$tool" >/dev/null || pkg_skip "$tool is not installed (a Debian machine with dpkg-dev)"
done

build=$out/rel
mkdir -p "$out"
rm -f "$out"/echo-oracled_*.deb
for revision in 1 2; do
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DBUILD_TESTING=OFF -DEO_BENCH=OFF -DEO_PACKAGE_REVISION="$revision" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target package >"$out/build-$revision.log" 2>&1 \
    || { cat "$out/build-$revision.log" >&2; pkg_die "cmake --build --target package (revision $revision)"; }
  deb=$(pkg_deb "$build" "$revision")
  mv "$deb" "$out/"
  pkg_ok "built ${deb##*/}"
done
