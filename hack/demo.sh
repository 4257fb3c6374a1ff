#!/usr/bin/env bash
# silo's main job, end to end, in a throw-away state directory: build silo,
# make a small image, clone it, push a file, snapshot, change, roll back,
# pull the file back, copy. (Booting arrives with the runtime, export with
# image export.) Run as root: make demo.
set -euo pipefail
cd "$(dirname "$0")/.."

go build -tags urfave_cli_no_docs -o bin/silo ./cmd/silo
image=$(hack/busybox-image.sh)
export SILO_STATE_DIR=${SILO_STATE_DIR:-$(mktemp -d /var/tmp/silo-demo.XXXXXX)}
trap 'rm -rf "$SILO_STATE_DIR"' EXIT
work=$(mktemp -d)
trap 'rm -rf "$SILO_STATE_DIR" "$work"' EXIT

step() { printf '\n$ silo %s\n' "$*"; bin/silo "$@"; }
step image import "$image" --alias busybox
step create busybox web
echo "hello from version 1" >"$work/motd"
step file push "$work/motd" web/etc/motd
step snapshot create web
echo "hello from version 2" >"$work/motd"
step file push "$work/motd" web/etc/motd
step snapshot create web
step snapshot restore web snap0
step file pull web/etc/motd -
step snapshot list web
step copy web/snap1 web2
step file pull web2/etc/motd -
step list
step info web
step delete web2
step delete web
