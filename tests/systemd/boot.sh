#!/usr/bin/env bash
# PID 1 of the test rig's new PID, mount and UTS namespaces (see lib.sh,
# rig_boot): make everything a private systemd could write to private, then
# become that systemd.
#
# usage: boot.sh TARGET CGROUP
#   TARGET  name of the minimal target unit to write and boot into
#   CGROUP  cgroup path (relative to each hierarchy) to run under, or ""
#
# Nothing here may touch the host: every mount is made in this mount
# namespace, whose mounts are private (unshare made them so or, in a chroot,
# they were already).
set -euo pipefail

target=$1
cgroup=$2

# In a chroot (as in fresh-debian) / is no mount point, and systemd could
# give its services neither mount namespaces (it remounts /) nor user
# namespaces (the kernel refuses CLONE_NEWUSER in a chroot). So, as
# switch_root does, put the chroot's directory on top of this namespace's
# root mount and start again from there. Entering our own mount namespace
# leaves the chroot; file descriptor 9 remembers where it was.
root_is_mount=no
while read -r _ _ _ _ mount_point _; do
  [ "$mount_point" != / ] || root_is_mount=yes
done </proc/self/mountinfo
if [ "$root_is_mount" = no ]; then
  exec 9</
  # shellcheck disable=SC2016 # expanded by that shell
  exec nsenter --mount=/proc/self/ns/mnt -- bash -c '
    set -e
    root=$(readlink /proc/self/fd/9)
    exec 9<&-
    mount --rbind "$root" "$root"
    cd "$root"
    mount --move . /
    exec chroot . bash "$@"' _ "$0" "$@"
fi

# Fresh /tmp, /run and /var/tmp before anything else: a systemd that saw the
# host's would let systemd-tmpfiles clean them.
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -m 0700 /run/eo-rig

# A /dev of our own, as a container manager makes one: on the host's /dev
# journald would leave a /dev/log symlink behind and systemd would write its
# status lines to the machine's console. Here /dev/console is a plain file,
# the boot log.
dev=/run/eo-rig/dev
mkdir "$dev"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$dev"
while read -r name major minor; do
  mknod -m 0666 "$dev/$name" c "$major" "$minor"
done <<'NODES'
null 1 3
zero 1 5
full 1 7
random 1 8
urandom 1 9
tty 5 0
NODES
install -m 0600 /dev/null "$dev/console"
mkdir "$dev/pts" "$dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"
ln -s pts/ptmx "$dev/ptmx"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
mount --move "$dev" /dev

# Writable /etc, /usr and /var whose changes live in this /run only: the
# tests install the daemon, its config and whatever systemd writes at boot
# (machine-id) there, or the whole package with dpkg (its database in
# /var/lib/dpkg, deb-systemd-helper's state in /var/lib/systemd), and the
# host never sees them. Without merged /usr, /lib and the rest are folders
# of their own that dpkg writes to as well.
for dir in /etc /usr /var /bin /sbin /lib /lib32 /lib64 /libx32; do
  if [ ! -d "$dir" ] || [ -L "$dir" ]; then continue; fi
  layer=/run/eo-rig/overlay$dir
  mkdir -p "$layer/upper" "$layer/work"
  mount -t overlay overlay \
    -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir"
done
# The overlay hid the fresh /var/tmp under the host's: a fresh one again.
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp

# The journal stays in memory: never in the host's /var/log/journal.
mkdir -p /run/systemd/journald.conf.d /run/systemd/system
printf '[Journal]\nStorage=volatile\n' >/run/systemd/journald.conf.d/eo-rig.conf

# The only target: journald and nothing of the host's own services.
cat >"/run/systemd/system/$target" <<'UNIT'
[Unit]
Description=echo-oracled test rig
Wants=systemd-journald.socket systemd-journald.service
UNIT

# A cgroup subtree of our own, so that two rigs never share (and stop) each
# other's service cgroups and lib.sh can remove it all afterwards. systemd
# takes the cgroup it starts in as its root.
if [ -n "$cgroup" ]; then
  for hierarchy in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    case $(stat -fc %T "$hierarchy" 2>/dev/null) in
      cgroupfs | cgroup2fs)
        mkdir -p "$hierarchy${cgroup%/*}"
        mkdir "$hierarchy$cgroup"   # never another rig's
        echo $$ >"$hierarchy$cgroup/cgroup.procs"
        ;;
    esac
  done
fi

# $container makes systemd behave as in a container whatever it detects: no
# clock, kernel module, core_pattern or printk changes at boot, no swapoff or
# loop/DM detaching at power-off. Those would be the host's.
export container=eo-rig
exec /lib/systemd/systemd --system --unit="$target"
