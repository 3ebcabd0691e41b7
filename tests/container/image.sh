#!/usr/bin/env bash
# Builds the image from conf/container/Containerfile as the README says,
# on the base base.sh makes from Debian packages, and checks what it is:
# at most 40 MB, a fixed numeric non-root user, the OCI labels, the
# project's version, and the config it ships valid.
#
# usage: tests/container/image.sh SOURCE_DIR STATE VERSION
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SOURCE_DIR STATE VERSION" >&2; exit 64; }
src=$1 state=$2 version=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ct_need_runtime

"$here/base.sh" "$state"
ct_setup

# The build stage's apt-get reaches the archive through the host's
# network (podman's own would need a bridge). Its layers are cached in
# this storage: a second build only recompiles what changed.
start=$(date +%s)
(cd "$src" && ct_podman build --network=host --quiet \
  -f conf/container/Containerfile \
  --ignorefile conf/container/Containerfile.containerignore \
  --build-arg BASE="$CT_BASE" --build-arg VERSION="$version" \
  -t "$CT_IMAGE" .) >"$state/build.log" 2>&1 ||
  { tail -n 60 "$state/build.log" >&2; ct_die "podman build"; }
ct_ok "podman build in $(($(date +%s) - start)) s"

size=$(ct_podman image inspect -f '{{.Size}}' "$CT_IMAGE")
mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1000000 }')
[ "$size" -le 40000000 ] || ct_die "the image is $mb MB, over 40 MB"
ct_ok "image size $mb MB (at most 40 MB)"

label() {
  ct_podman image inspect -f "{{index .Labels \"org.opencontainers.image.$1\"}}" "$CT_IMAGE"
}
[ "$(label version)" = "$version" ] || ct_die "label version is '$(label version)', not $version"
[ "$(label licenses)" = BSD-2-Clause ] || ct_die "label licenses is '$(label licenses)'"
ct_podman image inspect -f '{{json .Labels}}' "$CT_IMAGE" |
  grep -q '"org.opencontainers.image.source"' || ct_die "no label source"
ct_ok "OCI labels: version $version, licenses BSD-2-Clause, source"

user=$(ct_podman image inspect -f '{{.Config.User}}' "$CT_IMAGE")
[ "$user" = 65532:65532 ] || ct_die "USER is '$user', not 65532:65532"
stop=$(ct_podman image inspect -f '{{.Config.StopSignal}}' "$CT_IMAGE")
[ "$stop" = SIGTERM ] || ct_die "STOPSIGNAL is '$stop'"
ct_ok "USER $user, STOPSIGNAL $stop"

# The files of the image: nothing but the daemon, its libraries, their
# copyright files, its config, passwd and group.
ctr=$(ct_podman create "$CT_IMAGE")
trap 'ct_podman rm -f "$ctr" >/dev/null' EXIT
ct_podman export "$ctr" | tar -t >"$state/files.txt"
other=$(grep -v -E '^(usr/sbin/echo-oracled|etc/echo-oracled/(echo-oracled.conf)?|etc/(passwd|group)|usr/lib/.*\.so[.0-9]*|usr/share/doc/.*|(usr/|usr/lib/|usr/lib64/|usr/sbin/|usr/share/|etc/|usr/lib/[a-z0-9_-]+/)|(bin|lib|lib32|lib64|sbin)|usr/lib64/ld-linux.*|(dev|proc|sys|run|tmp|etc/hosts|etc/hostname|etc/resolv.conf|run/.containerenv)/?)$' "$state/files.txt" || true)
[ -z "$other" ] || ct_die "the image holds more than it needs: $other"
ct_ok "$(grep -c '\.so' "$state/files.txt") shared objects, the daemon and its config; nothing else"

# The daemon's own check of the config it ships, in the image.
ct_podman run --rm --network=none "$CT_IMAGE" -t \
  -c /etc/echo-oracled/echo-oracled.conf >"$state/check.log" 2>&1 ||
  { cat "$state/check.log" >&2; ct_die "echo-oracled -t of the image's config"; }
ct_ok "the image's config is valid"
echo "$ct_checks passed, 0 failed"
