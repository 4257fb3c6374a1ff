#!/usr/bin/env bash
# silo's main job, end to end, in a throw-away state directory: install
# what is needed, build silo, make a small image, launch a clone and wait
# for it, exec into it, snapshot, change a file, roll back, show the file
# back, copy, serve a page from it through a port forward, list it with
# its address, stop, export it as a backup and import it back, publish it
# as an image and export that as an LXD image. Run as root: make demo.
# silo runs in a network namespace of the demo's own: its bridge, NAT
# rules and dnsmasq never touch the host's network.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
make --no-print-directory build  # the Makefile says how silo is built
image=$(hack/busybox-image.sh)
export SILO_STATE_DIR=${SILO_STATE_DIR:-$(mktemp -d /var/tmp/silo-demo.XXXXXX)}
ns=silo-demo-$$
innet() { nsenter --net="/run/netns/$ns" "$@"; }
silo() { innet bin/silo "$@"; }
names() { sed -n 's/^    "name": "\(.*\)",$/\1/p'; }
cleanup() {
	for i in $(silo list --format json | names); do
		silo delete --force "$i" || true
	done
	# The default profile's nic keeps its network in use.
	silo profile device remove default eth0 >/dev/null 2>&1 || true
	for n in $(silo network list --format json | names); do
		silo network delete "$n" || true
	done
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" || true; done
	ip netns del "$ns" || true
	rm -rf "$SILO_STATE_DIR"
}
ip netns add "$ns"
trap cleanup EXIT
ip -n "$ns" link set lo up

step() {
	printf '\n$ silo'
	printf ' %q' "$@"
	printf '\n'
	silo "$@"
}
step image import "$image" --alias busybox
step launch busybox web --wait -c limits.memory=256MiB
step exec web -- sh -c 'echo "hello from version 1" > /etc/motd; cat /etc/motd'
step snapshot create web
step exec web -- sh -c 'echo "hello from version 2" > /etc/motd; cat /etc/motd'
step snapshot restore web snap0 --force
step exec web -- cat /etc/motd
step copy web/snap0 web2
step file pull web2/etc/motd -
step config device add web http proxy listen=tcp:127.0.0.1:8080 connect=tcp:127.0.0.1:80
step exec web -- sh -c 'mkdir -p /var/www && echo "hello from $(hostname), through a port forward" > /var/www/index.html && httpd -p 80 -h /var/www'
printf '\n$ wget -qO- http://127.0.0.1:8080/\n'
innet busybox wget -qO- http://127.0.0.1:8080/
step list
step info web
step stop web
step export web -o "$SILO_STATE_DIR/web.backup"
step import "$SILO_STATE_DIR/web.backup" web-restored
step snapshot list web-restored
step publish web --alias web-image
step image export web-image -o "$SILO_STATE_DIR/web-image.tar.zst"
step image info web-image
step list
