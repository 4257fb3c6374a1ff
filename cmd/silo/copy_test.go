package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// snapshotTimes gives the creation time of each snapshot of name.
func snapshotTimes(t *testing.T, e *env, name string) map[string]time.Time {
	var snaps []struct {
		Name      string
		CreatedAt time.Time `json:"created_at"`
	}
	e.json(&snaps, "snapshot", "list", name)
	out := map[string]time.Time{}
	for _, s := range snaps {
		out[s.Name] = s.CreatedAt
	}
	return out
}

// requireHead checks what history left in the head of a copy (whose
// machine ID and hostname are its own).
func requireHead(t *testing.T, e *env, name, tool string) {
	t.Helper()
	withTree(t, e, name, "", func(root string) {
		if b, err := os.ReadFile(filepath.Join(root, "usr/bin/tool")); err != nil || string(b) != tool {
			t.Fatalf("%s: usr/bin/tool holds %q (%v)", name, b, err)
		}
		if _, err := os.Lstat(filepath.Join(root, "dev/fifo")); !os.IsNotExist(err) {
			t.Fatalf("%s: dev/fifo, deleted in the source, is there: %v", name, err)
		}
	})
}

// A copy carries the snapshots, with their names, creation times and
// trees, within a pool, to a pool of the same driver and across drivers;
// --instance-only leaves them out.
func TestCopyCarriesSnapshots(t *testing.T) {
	e, pools := backupEnv(t)
	for _, src := range drivers {
		name := "src-" + src
		history(t, e, name, pools[src])
		times := snapshotTimes(t, e, name)
		for _, dst := range drivers {
			cp := "cp-" + src + "-" + dst
			e.ok("copy", name, cp, "--pool", pools[dst])
			if got := strings.Join(snapshotNames(t, e, cp), " "); got != "s0 s1 s2" {
				t.Fatalf("%s has snapshots %q", cp, got)
			}
			for s, at := range snapshotTimes(t, e, cp) {
				if !at.Equal(times[s]) {
					t.Fatalf("%s/%s was created at %v, the source's at %v", cp, s, at, times[s])
				}
			}
			sameTrees(t, e, name, name, cp, false, "s0", "s1", "s2")
			requireHead(t, e, cp, "changed\n")
		}
		only := "only-" + src
		e.ok("copy", name, only, "--instance-only")
		if got := snapshotNames(t, e, only); len(got) != 0 {
			t.Fatalf("--instance-only copied snapshots %v", got)
		}
		requireHead(t, e, only, "changed\n")
	}
	e.consistent()
}

// refreshed runs copy --refresh and returns the bytes it says it moved.
func refreshed(t *testing.T, e *env, args ...string) int64 {
	t.Helper()
	n, _ := refreshedBy(t, e, args...)
	return n
}

// refreshedBy runs copy --refresh and returns the bytes it says it moved
// and what moved them.
func refreshedBy(t *testing.T, e *env, args ...string) (int64, string) {
	t.Helper()
	return parseRefreshed(t, e.ok(append([]string{"copy", "--refresh"}, args...)...))
}

// parseRefreshed reads what a refresh said: the bytes it moved and what
// moved them.
func parseRefreshed(t *testing.T, out string) (int64, string) {
	t.Helper()
	var what, dst, src string
	var added, replaced int
	var n int64
	if _, err := fmt.Sscanf(out, "%s %s refreshed from %s %d snapshots added, %d replaced, %d bytes moved by ", &what, &dst, &src, &added, &replaced, &n); err != nil {
		t.Fatalf("a refresh said %q: %v", out, err)
	}
	_, by, _ := strings.Cut(strings.TrimSpace(out), " bytes moved by ")
	return n, by
}

// refreshBy is what should move a refresh from a pool of driver src to
// one of dst (btrfs2, zfs2: a second pool of the driver), when they share
// a snapshot.
func refreshBy(src, dst string) string {
	if src != "dir" && strings.TrimSuffix(dst, "2") == src {
		return "the driver's streams"
	}
	return "differences of the trees"
}

// morePools adds a second btrfs and zfs pool to a backupEnv's, as btrfs2
// and zfs2, and returns the drivers and those as the targets of copies.
func morePools(e *env, pools map[string]string) []string {
	targets := slices.Clone(drivers)
	for _, d := range []string{"btrfs", "zfs"} {
		e.ok("pool", "create", "p"+d+"2", "--driver", d, "--size", "1GiB")
		pools[d+"2"] = "p" + d + "2"
		targets = append(targets, d+"2")
	}
	return targets
}

// writeIn writes size random bytes to path in instance name.
func writeIn(t *testing.T, e *env, name, path string, size int) []byte {
	b := make([]byte, size)
	rand.Read(b)
	withTree(t, e, name, "", func(root string) {
		if err := os.WriteFile(filepath.Join(root, path), b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	return b
}

func requireFile(t *testing.T, e *env, name, snap, path string, want []byte) {
	t.Helper()
	withTree(t, e, name, snap, func(root string) {
		if b, err := os.ReadFile(filepath.Join(root, path)); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("%s/%s: %s holds %d bytes, not the %d expected (%v)", name, snap, path, len(b), len(want), err)
		}
	})
}

// copy --refresh, within a pool, between pools of one driver and across
// drivers: it adds the snapshots the target lacks, keeps the target's
// own, moves only what changed (by btrfs's or zfs's incremental streams
// between pools of that driver, as copies with snapshots are sends and
// receives; by the differences of the trees otherwise), refuses a target that has diverged
// unless --force, and works from a copy without snapshots.
func TestCopyRefresh(t *testing.T) {
	e, pools := backupEnv(t)
	targets := morePools(e, pools)
	const big = 4 << 20 // what a refresh that resent everything would move, at least
	for _, src := range drivers {
		name := "r-" + src
		e.ok("create", "tiny", name, "--pool", pools[src], "-c", "security.privileged=true")
		writeIn(t, e, name, "big", big)
		e.ok("snapshot", "create", name, "a")
		for _, dst := range targets {
			cp := name + "-" + dst
			e.ok("copy", name, cp, "--pool", pools[dst])
			mounts := e.mounts()
			if n, by := refreshedBy(t, e, name, cp); n > 64<<10 || by != refreshBy(src, dst) {
				t.Fatalf("%s: a refresh with nothing new moved %d bytes by %s", cp, n, by)
			}
			// The head it replaced, kept for its snapshots, is no mount.
			if got := e.mounts(); got != mounts {
				t.Fatalf("%s: %d mounts below the state directory after a refresh, %d before", cp, got, mounts)
			}
			e.ok("snapshot", "create", cp, "own")
		}
		b := writeIn(t, e, name, "etc/small", 1<<20)
		e.ok("snapshot", "create", name, "b")
		head := writeIn(t, e, name, "etc/small", 50<<10)
		for _, dst := range targets {
			cp := name + "-" + dst
			if n, by := refreshedBy(t, e, name, cp); n < 1<<20+50<<10 || n > 3<<19 || by != refreshBy(src, dst) {
				t.Fatalf("%s: a refresh after 1 MiB and 50 KiB of changes moved %d bytes by %s", cp, n, by)
			}
			if got := strings.Join(snapshotNames(t, e, cp), " "); got != "a own b" {
				t.Fatalf("%s has snapshots %q after the refresh", cp, got)
			}
			requireFile(t, e, cp, "b", "etc/small", b)
			requireFile(t, e, cp, "", "etc/small", head)
			sameTrees(t, e, name, name, cp, false, "a", "b")
		}

		// Diverged: a snapshot c on both sides, taken apart.
		e.ok("snapshot", "create", name, "c")
		for _, dst := range targets {
			cp := name + "-" + dst
			e.ok("snapshot", "create", cp, "c")
			e.fails(2, "has diverged", "copy", name, cp, "--refresh")
			if got := strings.Join(snapshotNames(t, e, cp), " "); got != "a own b c" {
				t.Fatalf("%s has snapshots %q after a refused refresh", cp, got)
			}
			if _, by := refreshedBy(t, e, name, cp, "--force"); by != refreshBy(src, dst) {
				t.Fatalf("%s: a forced refresh went by %s", cp, by)
			}
			if got := strings.Join(snapshotNames(t, e, cp), " "); got != "a own b c" {
				t.Fatalf("%s has snapshots %q after a forced refresh", cp, got)
			}
			sameTrees(t, e, name, name, cp, false, "c")
			// Now c is shared: the next refresh is quiet.
			if n := refreshed(t, e, name, cp); n > 64<<10 {
				t.Fatalf("%s: a refresh with nothing new moved %d bytes", cp, n)
			}
		}

		// From a copy that shares no snapshot, the trees are compared: the
		// snapshots it lacks come as differences from its head.
		only := name + "-only"
		e.ok("copy", name, only, "--instance-only")
		head = writeIn(t, e, name, "etc/small", 20<<10)
		if n, by := refreshedBy(t, e, name, only); n < 20<<10 || n > 3<<19 || by != "differences of the trees" {
			t.Fatalf("%s: a refresh after 20 KiB of changes moved %d bytes by %s", only, n, by)
		}
		requireFile(t, e, only, "", "etc/small", head)
		if got := strings.Join(snapshotNames(t, e, only), " "); got != "a b c" {
			t.Fatalf("%s has snapshots %q after its refresh", only, got)
		}
	}
	e.fails(2, "leave out /SNAP", "copy", "r-dir/a", "r-dir-dir", "--refresh")
	e.fails(3, "not found", "copy", "r-dir", "nothing", "--refresh")
	e.consistent()
}

// A kill -9 after any step of a copy with snapshots or of a refresh
// leaves the copy whole or absent, the target as it was or refreshed.
func TestCopyRefreshCrashes(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
			e.ok(append([]string{"create", "tiny", "base"}, e.poolArgs()...)...)
			e.ok("snapshot", "create", "base", "s")
			has := func(list []string, name string) bool { return slices.Contains(list, name) }
			runCrashes(t, e, []crashCase{
				{
					kind: "copy", name: "copy-with-snapshots", steps: []string{"begun", "received", "committed"}, done: []string{"committed"},
					cmd: func(n int) []string { return []string{"copy", "base", fmt.Sprintf("cs%d", n)} },
					state: func(e *env, n int) bool {
						return e.run("info", fmt.Sprintf("cs%d", n)).code == 0 && has(snapshotNames(t, e, fmt.Sprintf("cs%d", n)), "s")
					},
				},
				{
					kind: "refresh", steps: refreshSteps(driver), done: []string{"committed"},
					setup: func(e *env, n int) {
						e.ok("copy", "base", fmt.Sprintf("rf%d", n))
						e.ok("snapshot", "create", "base", fmt.Sprintf("x%d", n))
					},
					cmd: func(n int) []string { return []string{"copy", "base", fmt.Sprintf("rf%d", n), "--refresh"} },
					state: func(e *env, n int) bool {
						return has(snapshotNames(t, e, fmt.Sprintf("rf%d", n)), fmt.Sprintf("x%d", n))
					},
				},
			}, nil)
		})
	}
}

// An unprivileged instance on zfs-fuse, which cannot idmap, has its files
// shifted on disk: its copies within the pool and to another zfs pool
// carry them so, by zfs's streams, and so do their refreshes.
func TestCopyRefreshShifted(t *testing.T) {
	e := newEnv(t, "zfs")
	e.ok("pool", "create", "pzfs2", "--driver", "zfs", "--size", "1GiB")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok("create", "tiny", "u", "--pool", e.pool)
	e.ok("snapshot", "create", "u", "a")
	for _, pool := range []string{e.pool, "pzfs2"} {
		cp := "u-" + pool
		e.ok("copy", "u", cp, "--pool", pool)
		if n, by := refreshedBy(t, e, "u", cp); n > 64<<10 || by != "the driver's streams" {
			t.Fatalf("%s: a refresh with nothing new moved %d bytes by %s", cp, n, by)
		}
	}
	b := writeIn(t, e, "u", "etc/small", 1<<20)
	e.ok("snapshot", "create", "u", "b")
	head := writeIn(t, e, "u", "etc/small", 50<<10)
	for _, pool := range []string{e.pool, "pzfs2"} {
		cp := "u-" + pool
		if n, by := refreshedBy(t, e, "u", cp); n < 1<<20+50<<10 || n > 3<<19 || by != "the driver's streams" {
			t.Fatalf("%s: a refresh after 1 MiB and 50 KiB of changes moved %d bytes by %s", cp, n, by)
		}
		requireFile(t, e, cp, "b", "etc/small", b)
		requireFile(t, e, cp, "", "etc/small", head)
		sameTrees(t, e, "u", "u", cp, false, "a", "b")
		// Restored, the copy's shared snapshot lives in a head the restore
		// retired: the new volume takes it over from there.
		e.ok("snapshot", "restore", cp, "a")
	}
	head = writeIn(t, e, "u", "etc/small", 20<<10)
	for _, pool := range []string{e.pool, "pzfs2"} {
		cp := "u-" + pool
		if n, by := refreshedBy(t, e, "u", cp); n < 20<<10 || n > 3<<19 || by != "the driver's streams" {
			t.Fatalf("%s: a refresh of a restored copy moved %d bytes by %s", cp, n, by)
		}
		requireFile(t, e, cp, "", "etc/small", head)
		requireFile(t, e, cp, "b", "etc/small", b)
		if got := strings.Join(snapshotNames(t, e, cp), " "); got != "a b" {
			t.Fatalf("%s has snapshots %q after its refresh", cp, got)
		}
	}
	e.consistent()
}

// refreshSteps are the steps of a refresh within a pool of driver, whose
// copy shares a snapshot with its source: on ZFS, the new head first
// takes over the copy's snapshots up to the shared one.
func refreshSteps(driver string) []string {
	if driver == "zfs" {
		return []string{"begun", "forked", "snapshots", "refreshed", "committed"}
	}
	return []string{"begun", "snapshots", "refreshed", "committed"}
}

// A running source is copied and refreshed from a snapshot taken for the
// purpose; a running target is refused.
func TestCopyRefreshRunning(t *testing.T) {
	e := bootEnv(t, "btrfs")
	e.launch("bb", "a")
	e.ok("snapshot", "create", "a", "s")
	e.ok("copy", "a", "b")
	if got := strings.Join(snapshotNames(t, e, "b"), " "); got != "s" {
		t.Fatalf("the copy of a running instance has snapshots %q", got)
	}
	e.ok("start", "b")
	e.fails(5, "is running", "copy", "a", "b", "--refresh")
	e.ok("stop", "b", "--force")
	e.ok("exec", "a", "--", "sh", "-c", "echo fresh > /root/marker")
	refreshed(t, e, "a", "b")
	e.ok("start", "b")
	if got := e.ok("exec", "b", "--", "cat", "/root/marker"); got != "fresh\n" {
		t.Fatalf("the refreshed copy holds %q", got)
	}
	if got := e.ok("exec", "b", "--", "hostname"); got != "b\n" {
		t.Fatalf("the refreshed copy is called %q", got)
	}
	e.ok("stop", "a", "--force")
	e.ok("stop", "b", "--force")
	e.consistent()
}
