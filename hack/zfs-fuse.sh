#!/usr/bin/env bash
# Starts the zfs-fuse daemon unless a ZFS (module or daemon) already answers.
# With "stop", stops the daemon this script started.
set -euo pipefail

pidfile=/run/silo-zfs-fuse.pid
case "${1:-start}" in
start)
	if zpool list >/dev/null 2>&1; then
		exit 0
	fi
	# A daemon killed without a chance to clean up (the machine stopped,
	# kill -9) leaves its pidfile, and zfs-fuse refuses to start over one.
	if [ -f "$pidfile" ] && ! grep -qs zfs-fuse "/proc/$(cat "$pidfile")/comm"; then
		rm -f "$pidfile"
	fi
	zfs-fuse --pidfile "$pidfile"
	for _ in $(seq 50); do
		zpool list >/dev/null 2>&1 && exit 0
		sleep 0.1
	done
	echo "zfs-fuse did not start" >&2
	exit 1
	;;
stop)
	if [ -f "$pidfile" ]; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
		rm -f "$pidfile"
	fi
	;;
esac
