#!/bin/sh
# Gathers the runtime image's whole root in ROOT (run in the build stage):
# the daemon, stripped; every shared library it loads, found by ldd, at
# the same path, with the /lib symlinks of a merged-/usr Debian; each
# library package's copyright file, and the daemon's own licence; its
# config; passwd and group entries for its user (65532, Containerfile
# says why) so that logs and ps show a name.
#
# usage: sh rootfs.sh BINARY CONFIG ROOT
set -eu
bin=$1 conf=$2 root=$3

mkdir -p "$root/usr/sbin" "$root/etc/echo-oracled" \
  "$root/usr/share/doc/echo-oracled"
install -m 0755 -s "$bin" "$root/usr/sbin/echo-oracled"
install -m 0644 "$conf" "$root/etc/echo-oracled/echo-oracled.conf"
install -m 0644 LICENSE "$root/usr/share/doc/echo-oracled/copyright"

# /lib, /lib64 (x86-64's loader path), /lib32 and /bin are symlinks into
# /usr on Debian 12; a library named by either path is found.
for d in bin lib lib32 lib64 sbin; do
  [ -L "/$d" ] && ln -s "$(readlink "/$d")" "$root/$d"
done

# ldd prints "name => /path (addr)" and the loader as "/path (addr)".
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
while read -r lib; do
  real=$(readlink -f "$lib")
  mkdir -p "$root$(dirname "$real")"
  cp "$real" "$root$real"
  # The name the loader looks up, where it looks (a soname's symlink, or
  # the loader's /usr/lib64 entry), pointing at the file.
  dir=$(readlink -f "$(dirname "$lib")")
  if [ "$dir/$(basename "$lib")" != "$real" ]; then
    mkdir -p "$root$dir"
    ln -sf "$real" "$root$dir/$(basename "$lib")"
  fi
  pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real")
  pkg=${pkg%%:*}
  mkdir -p "$root/usr/share/doc/$pkg"
  cp "/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/copyright"
done

printf 'echo-oracled:x:65532:65532:echo-oracled:/nonexistent:/usr/sbin/nologin\n' \
  >"$root/etc/passwd"
printf 'echo-oracled:x:65532:\n' >"$root/etc/group"
