#!/usr/bin/env bash
# Builds a Debian minbase root filesystem tarball with systemd as init
# (mmdebstrap from Debian's mirror) and prints its path. Its network is
# systemd-networkd's DHCP client on eth*, as a cloud image's is. It is
# cached: a second run reuses it. Usage: hack/debian-image.sh [RELEASE] [OUT.tar.zst]
set -euo pipefail

release=${1:-bookworm}
# The name carries a version: a change below must not reuse an old cache.
out=${2:-${SILO_CACHE:-/var/cache/silo-hack}/debian-$release-2.tar.zst}
mirror=${SILO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -s "$out" ]; then echo "$out"; exit 0; fi
for p in mmdebstrap zstd; do
	command -v "$p" >/dev/null || {
		echo "installing $p" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
	}
done
mkdir -p "$(dirname "$out")"
# mmdebstrap picks the compressor from the name; a partial file never
# passes for a finished one.
mmdebstrap --quiet --variant=minbase --include=systemd-sysv --mode=root \
	--aptopt='APT::Sandbox::User "root"' \
	--customize-hook='mkdir -p "$1/etc/systemd/network" && printf "[Match]\nName=eth*\n\n[Network]\nDHCP=ipv4\n" >"$1/etc/systemd/network/80-dhcp.network"' \
	--customize-hook='chroot "$1" systemctl enable systemd-networkd' \
	"$release" "$out.tmp.tar.zst" "$mirror" >&2
mv "$out.tmp.tar.zst" "$out"
echo "$out"
