#!/usr/bin/env bash
# `podman kube play` of conf/kubernetes/echo-oracled.yaml as shipped,
# but for two lines: the image, the one image.sh built, and replicas, 1
# (podman 4.3 publishes each containerPort on the host, as if it were a
# hostPort, so a second replica's ports are taken; Kubernetes gives each
# pod an address of its own). The pod
# starts under the manifest's security context, and serves the
# ConfigMap's config (mounted as a folder), not the image's own.
#
# kube play makes a pod cgroup in every v1 controller, and the machine's
# /sys/fs/cgroup is a read-only tmpfs that lacks some: the test re-runs
# itself in a private mount namespace with a fresh tmpfs there holding
# every controller of /proc/cgroups (the machine's own mount is never
# touched). The namespace has a network of its own too, loopback alone,
# which the pod shares (--network host: podman 4.3 refuses the
# manifest's containerPorts without a bridge, and a bridge would put
# traffic on other addresses); the test's clients are in it.
#
# usage: tests/container/kube.sh SOURCE_DIR STATE   (after image.sh)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR STATE" >&2; exit 64; }
src=$1 state=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ct_need_runtime
command -v unshare >/dev/null || ct_skip "unshare is not installed"
# A pod's infra container is built locally around catatonit.
command -v catatonit >/dev/null || ct_skip "catatonit is not installed"
command -v iptables >/dev/null || ct_skip "iptables is not installed (the pod's ports)"

if [ -z "${CT_PRIVATE_CGROUPS:-}" ]; then
  exec unshare --mount --net --propagation private \
    env CT_PRIVATE_CGROUPS=1 "$0" "$@"
fi
mount -t tmpfs -o mode=755 eo-test-cgroup /sys/fs/cgroup
while read -r name _ _ enabled; do
  case $name in \#*) continue ;; esac
  [ "$enabled" = 1 ] || continue
  mkdir -p "/sys/fs/cgroup/$name"
  mount -t cgroup -o "$name" cgroup "/sys/fs/cgroup/$name" ||
    ct_die "cannot mount the $name cgroup controller"
done </proc/cgroups
mkdir -p /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
ip link set lo up
ct_ok "a private /sys/fs/cgroup with every v1 controller, a network of loopback alone"

ct_setup
ct_podman image exists "$CT_IMAGE" || ct_die "no $CT_IMAGE: container.image builds it"
work=$(mktemp -d "$state/kube-XXXXXX")
cleanup() {
  ct_podman kube down "$work/play.yaml" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
manifest=$src/conf/kubernetes/echo-oracled.yaml
sed -e "s|^\( *image:\) echo-oracled:.*|\1 $CT_IMAGE|" \
  -e 's|^\( *replicas:\) 2$|\1 1|' "$manifest" >"$work/play.yaml"
changed=$(diff "$manifest" "$work/play.yaml" | grep -c '^>' || true)
[ "$changed" = 2 ] || ct_die "$changed lines of the manifest replaced, not the image's and replicas'"

ct_podman kube play "$work/play.yaml" >"$work/play.log" 2>&1 ||
  { cat "$work/play.log" >&2; ct_die "podman kube play"; }
ctr=$(ct_podman ps --format '{{.Names}}' | grep -- '-echo-oracled$' | head -n 1)
[ -n "$ctr" ] || { ct_podman ps -a >&2; ct_die "no echo-oracled container runs"; }
pid=$(ct_podman inspect -f '{{.State.Pid}}' "$ctr")
ct_wait_port "$pid" 7007 || { ct_podman logs "$ctr" >&2; ct_die "nothing listens on 7007"; }
ct_ok "pod started: $ctr"

status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
[ "$(status Uid)" = 65532 ] || ct_die "runs as uid $(status Uid)"
[ "$(status CapEff)" = 0000000000000000 ] || ct_die "CapEff is $(status CapEff)"
[ "$(status NoNewPrivs)" = 1 ] || ct_die "NoNewPrivs is $(status NoNewPrivs)"
root_opts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
case ",$root_opts," in *,ro,*) ;; *) ct_die "/ is mounted $root_opts, not ro" ;; esac
ct_ok "the manifest's security context: uid 65532, no capability, no new privileges, / read-only"

# The ConfigMap's config, not the image's: its max_connections (4096,
# the image's is 10000) is the one the daemon started with.
ct_podman logs "$ctr" 2>&1 | grep -q 'started: .*max_connections 4096, configuration /etc/echo-oracled/echo-oracled.conf' ||
  { ct_podman logs "$ctr" >&2; ct_die "the daemon did not start on the ConfigMap's config"; }
got=$(printf 'hello, pod\n' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7007)
[ "$got" = "hello, pod" ] || ct_die "echo in the pod answered '$got'"
got=$(printf 'Is it a pod?' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7070 | tr -d '\r')
case $got in "Is it a pod? "[A-Z]*.) ;; *) ct_die "the oracle answered '$got'" ;; esac
ct_ok "the ConfigMap's config served: max_connections 4096; echo and oracle answer"

# Every httpGet path of the manifest's probes answers 200, as the
# kubelet would ask it (the port named "metrics" is 9107).
paths=$(sed -n 's/^ *httpGet: {path: \([^,]*\), port: metrics}$/\1/p' "$manifest" | sort -u)
[ -n "$paths" ] || ct_die "no httpGet probe on the metrics port in the manifest"
for path in $paths /metrics; do
  head=$(ct_http "$pid" 9107 "$path" | head -n 1 | tr -d '\r')
  case $head in "HTTP/1."?" 200"*) ;; *) ct_die "GET $path: $head" ;; esac
done
ct_ok "the probes' paths and /metrics answer 200: ${paths//$'\n'/ }"

ct_podman kube down "$work/play.yaml" >/dev/null || ct_die "podman kube down"
ct_ok "podman kube down"
echo "$ct_checks passed, 0 failed"
