#!/usr/bin/env bash
# silo's main job, end to end, in a throw-away state directory: install
# what is needed, build silo, make a small image, launch a clone and wait
# for it, exec into it, snapshot, change a file, roll back, show the file
# back, copy, stop, export it as a backup and import it back, publish it
# as an image and export that as an LXD image. Run as root: make demo.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
make --no-print-directory build  # the Makefile says how silo is built
image=$(hack/busybox-image.sh)
export SILO_STATE_DIR=${SILO_STATE_DIR:-$(mktemp -d /var/tmp/silo-demo.XXXXXX)}
cleanup() {
	for i in $(bin/silo list --format json | sed -n 's/^    "name": "\(.*\)",$/\1/p'); do
		bin/silo delete --force "$i" || true
	done
	rm -rf "$SILO_STATE_DIR"
}
trap cleanup EXIT

step() {
	printf '\n$ silo'
	printf ' %q' "$@"
	printf '\n'
	bin/silo "$@"
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
