# shellcheck shell=bash
# Helpers shared by the package tests. Source it.

# Exit 77 (skipped), with the reason, unless EO_NO_SKIP is set (CI, where
# everything the tests need is installed): then a skip is a failure.
pkg_skip() {
  if [ -n "${EO_NO_SKIP:-}" ]; then
    printf 'FAIL: cannot run, and EO_NO_SKIP is set: %s\n' "$*" >&2
    exit 1
  fi
  printf 'SKIP: %s\n' "$*" >&2
  exit 77
}
pkg_die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

pkg_checks=0
pkg_ok() { pkg_checks=$((pkg_checks + 1)); printf 'ok %d: %s\n' "$pkg_checks" "$*"; }

# The one .deb of revision $2 in folder $1.
pkg_deb() {
  local deb
  for deb in "$1"/echo-oracled_*-"$2"_*.deb; do
    [ -f "$deb" ] || pkg_die "no echo-oracled package of revision $2 in $1 (package.build makes them)"
    printf '%s' "$deb"
    return 0
  done
}
