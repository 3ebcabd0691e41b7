#!/usr/bin/env bash
# Makes the base image the Containerfile is built from in tests, without
# any registry: Debian 12 (minbase) from the machine's own apt sources by
# mmdebstrap, imported into this build's podman storage. The tarball and
# the image are kept under STATE, so a second run (CI's next suite, a
# developer's next ctest) reuses them.
#
# usage: tests/container/base.sh STATE
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE" >&2; exit 64; }
state=$1
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
ct_need_runtime
command -v mmdebstrap >/dev/null || ct_skip "mmdebstrap is not installed"
ct_setup

if ct_podman image exists "$CT_BASE"; then
  ct_ok "base $CT_BASE already built"
  exit 0
fi

tar=$state/base.tar
if [ ! -s "$tar" ]; then
  # The machine's sources and apt settings (a mirror, a proxy, a
  # snapshot's Check-Valid-Until) go in, so that the image's own apt-get
  # reaches the same archive as the machine's.
  # (A name that ends in .tar: anything else is made a folder.)
  mirrors=()
  [ -s /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list &&
    mirrors+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -s "$f" ] && mirrors+=("$f")
  done
  [ ${#mirrors[@]} -gt 0 ] || ct_die "no apt sources on this machine"
  aptopts=()
  for f in /etc/apt/apt.conf.d/99*; do
    [ -f "$f" ] && aptopts+=(--aptopt="$f")
  done
  start=$(date +%s)
  mmdebstrap --quiet --variant=minbase "${aptopts[@]}" bookworm "$state/base-part.tar" \
    "${mirrors[@]}" >"$state/mmdebstrap.log" 2>&1 ||
    { tail -n 40 "$state/mmdebstrap.log" >&2; ct_die "mmdebstrap"; }
  mv "$state/base-part.tar" "$tar"
  ct_ok "mmdebstrap made $(du -m "$tar" | cut -f1) MB in $(($(date +%s) - start)) s"
fi

ct_podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' "$tar" "$CT_BASE" >/dev/null ||
  ct_die "podman import $tar"
ct_ok "imported $CT_BASE"
