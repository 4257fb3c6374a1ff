package main

import (
	"os"
	"path/filepath"
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
