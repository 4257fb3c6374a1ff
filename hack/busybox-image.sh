#!/usr/bin/env bash
# Builds a tiny busybox-init root filesystem tarball from Debian's
# busybox-static package, in seconds, and prints its path. It is cached:
# a second run reuses it. Usage: hack/busybox-image.sh [OUT.tar.gz]
set -euo pipefail

# The name carries a version: a change below must not reuse an old cache.
out=${1:-${SILO_CACHE:-/var/cache/silo-hack}/busybox-3.tar.gz}
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root busybox-static >/dev/null)
dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,proc,sys,dev,tmp,run,root,var/log}
chmod 1777 "$root/tmp"
cp "$work/pkg/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
cat >"$root/etc/inittab" <<'INITTAB'
::sysinit:/etc/init.d/rcS
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
INITTAB
cat >"$root/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mount -t proc proc /proc 2>/dev/null
hostname -F /etc/hostname 2>/dev/null
RCS
chmod 755 "$root/etc/init.d/rcS"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo busybox >"$root/etc/hostname"
printf 'NAME=BusyBox\nID=busybox\n' >"$root/etc/os-release"
tar --numeric-owner --owner=0 --group=0 -C "$root" -czf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
