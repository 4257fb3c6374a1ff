#!/usr/bin/env bash
# Installs the system packages silo and its tests need, on Debian (as root).
# Safe to run again: it installs only what is missing.
set -euo pipefail

# libc6-dev: silo is linked statically (see the Makefile), against libc.a.
# dnsmasq-base serves the managed networks; the network tests use iproute2,
# busybox-static (udhcpc, ping) and iperf3. The quota tests make ext4
# filesystems (e2fsprogs). The completion tests drive the zsh script.
pkgs=(btrfs-progs zfs-fuse util-linux xz-utils runc runsc squashfs-tools mmdebstrap libc6-dev dnsmasq-base iproute2 busybox-static iperf3 e2fsprogs zsh)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "Go is not installed: https://go.dev/doc/install" >&2; exit 1; }
