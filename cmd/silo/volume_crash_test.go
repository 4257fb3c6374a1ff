package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A kill -9 after any step of any operation on custom volumes, followed
// by any silo command, leaves the records and the pools in agreement, and
// the operation either finished or undone.
func TestVolumeCrashSafety(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			p := e.volumePool()
			e.ok("volume", "create", p, "base")
			e.ok("volume", "snapshot", "create", p, "base", "s")
			exists := func(e *env, name string) bool { return e.run("volume", "info", p, name).code == 0 }
			hasSnap := func(e *env, snap string) bool {
				for _, s := range e.volume(p, "base").Snapshots {
					if s.Name == snap {
						return true
					}
				}
				return false
			}
			files := map[int]string{}
			update := func(n int) []string { return []string{"volume", "set", p, "base", fmt.Sprintf("user.n=%d", n)} }
			updated := func(e *env, n int) bool { return e.volume(p, "base").Config["user.n"] == fmt.Sprint(n) }
			if driver != "dir" {
				// A change of cap, which the undo must put back.
				size := func(n int) int64 { return int64(64+n) << 20 }
				update = func(n int) []string { return []string{"volume", "set", p, "base", fmt.Sprintf("size=%d", size(n))} }
				updated = func(e *env, n int) bool {
					v := e.volume(p, "base")
					if want := fmt.Sprint(size(n)); (v.Config["size"] == want) != (v.State.Usage.Total == size(n)) {
						e.t.Fatalf("the records say size=%s, the pool has a cap of %d", v.Config["size"], v.State.Usage.Total)
					}
					return v.State.Usage.Total == size(n)
				}
			}
			cases := []crashCase{
				{
					kind: "volume-create", steps: []string{"begun", "created", "committed"}, done: []string{"committed"},
					cmd:   func(n int) []string { return []string{"volume", "create", p, fmt.Sprintf("c%d", n)} },
					state: func(e *env, n int) bool { return exists(e, fmt.Sprintf("c%d", n)) },
				},
				{
					kind: "volume-snapshot", steps: []string{"begun", "snapshotted", "committed"}, done: []string{"committed"},
					cmd: func(n int) []string {
						return []string{"volume", "snapshot", "create", p, "base", fmt.Sprintf("sn%d", n)}
					},
					state: func(e *env, n int) bool { return hasSnap(e, fmt.Sprintf("sn%d", n)) },
				},
				{
					kind: "volume-restore", steps: []string{"begun", "cloned", "committed"}, done: []string{"committed"},
					setup: func(e *env, n int) { writeVolumeFile(t, e, p, "base", "marker", "x") },
					cmd:   func(n int) []string { return []string{"volume", "snapshot", "restore", p, "base", "s"} },
					// snapshot s has no marker.
					state: func(e *env, n int) bool { return volumeFile(t, e, p, "base", "marker") == "" },
				},
				{
					kind: "volume-snapshot-delete", steps: []string{"begun"}, done: []string{"begun"},
					setup: func(e *env, n int) { e.ok("volume", "snapshot", "create", p, "base", fmt.Sprintf("ds%d", n)) },
					cmd: func(n int) []string {
						return []string{"volume", "snapshot", "delete", p, "base", fmt.Sprintf("ds%d", n)}
					},
					state: func(e *env, n int) bool { return !hasSnap(e, fmt.Sprintf("ds%d", n)) },
				},
				{
					kind: "volume-delete", steps: []string{"begun"}, done: []string{"begun"},
					setup: func(e *env, n int) { e.ok("volume", "create", p, fmt.Sprintf("d%d", n)) },
					cmd:   func(n int) []string { return []string{"volume", "delete", p, fmt.Sprintf("d%d", n)} },
					state: func(e *env, n int) bool { return !exists(e, fmt.Sprintf("d%d", n)) },
				},
				{
					kind: "volume-import", steps: []string{"begun", "received", "committed"}, done: []string{"committed"},
					setup: func(e *env, n int) {
						files[n] = filepath.Join(e.state, fmt.Sprintf("vbackup%d", n))
						os.Remove(files[n])
						e.ok("volume", "export", p, "base", files[n])
					},
					cmd:   func(n int) []string { return []string{"volume", "import", p, fmt.Sprintf("imp%d", n), files[n]} },
					state: func(e *env, n int) bool { return exists(e, fmt.Sprintf("imp%d", n)) },
				},
				{
					// A copy with snapshots is an export piped into an import.
					kind: "volume-import", name: "volume-copy", steps: []string{"begun", "received", "committed"}, done: []string{"committed"},
					cmd: func(n int) []string { return []string{"volume", "copy", p + "/base", fmt.Sprintf("%s/cp%d", p, n)} },
					state: func(e *env, n int) bool {
						return exists(e, fmt.Sprintf("cp%d", n)) && len(e.volume(p, fmt.Sprintf("cp%d", n)).Snapshots) == len(e.volume(p, "base").Snapshots)
					},
				},
				{
					kind: "volume-refresh", steps: refreshSteps(driver), done: []string{"committed"},
					setup: func(e *env, n int) {
						e.ok("volume", "copy", p+"/base", fmt.Sprintf("%s/rf%d", p, n))
						e.ok("volume", "snapshot", "create", p, "base", fmt.Sprintf("x%d", n))
					},
					cmd: func(n int) []string {
						return []string{"volume", "copy", p + "/base", fmt.Sprintf("%s/rf%d", p, n), "--refresh"}
					},
					state: func(e *env, n int) bool {
						return slices.Contains(volumeSnapshotNames(e.volume(p, fmt.Sprintf("rf%d", n))), fmt.Sprintf("x%d", n))
					},
				},
				{
					kind: "volume-update", steps: []string{"begun", "resized", "committed"}, done: []string{"committed"},
					cmd:   update,
					state: updated,
				},
			}
			runCrashes(t, e, cases, nil)
		})
	}
}
