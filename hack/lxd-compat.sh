#!/usr/bin/env bash
# Checks that LXD takes an image silo exported: imports it with
# `lxc image import`, checks that LXD gives it silo's fingerprint, launches
# it, and checks that its templates ran (the hostname) and that systemd
# reaches running. Installs LXD (Debian's lxd package) if needed; leaves
# nothing of the check behind. Run as root:
#   silo image export debian -o /tmp/img.tar.zst && hack/lxd-compat.sh /tmp/img.tar.zst
set -euo pipefail

image=${1:?usage: hack/lxd-compat.sh IMAGE-FILE}
command -v lxc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lxd lxd-client >/dev/null
started=
if ! lxc info >/dev/null 2>&1; then
	lxd --group root >/dev/null 2>&1 &
	started=$!
	lxd waitready --timeout 60
fi
pool=silo-compat-$$
name=silo-compat-$$
cleanup() {
	lxc delete -f "$name" >/dev/null 2>&1 || true
	lxc image delete "$name" >/dev/null 2>&1 || true
	lxc storage delete "$pool" >/dev/null 2>&1 || true
	if [ -n "$started" ]; then kill "$started" || true; fi
}
trap cleanup EXIT

lxc storage create "$pool" dir >/dev/null
fp=$(lxc image import "$image" --alias "$name" | sed -n 's/.*fingerprint: //p')
want=$(sha256sum "$image" | cut -d' ' -f1)
[ "$fp" = "$want" ] || { echo "LXD gave the image fingerprint $fp, not $want" >&2; exit 1; }
lxc launch "$name" "$name" -s "$pool" >/dev/null
for _ in $(seq 60); do
	state=$(lxc exec "$name" -- systemctl is-system-running 2>/dev/null || true)
	case $state in running | degraded) break ;; esac
	sleep 1
done
host=$(lxc exec "$name" -- cat /etc/hostname)
echo "LXD imported $image as $fp; it booted to $state, hostname $host"
[ "$host" = "$name" ] && [[ $state =~ ^(running|degraded)$ ]]
