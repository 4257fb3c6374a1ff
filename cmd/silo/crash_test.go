package main

import (
	"archive/tar"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// crashCase is a command and the steps it can be killed after.
type crashCase struct {
	kind  string
	name  string // of its subtests, when kind is not enough; kind if empty
	steps []string
	// done lists the steps after which the operation is committed: the
	// next command finishes it rather than undoing it.
	done []string
	// setup makes what run n needs; cmd is the command; state says
	// whether its effect is there.
	setup func(e *env, n int)
	cmd   func(n int) []string
	state func(e *env, n int) bool
}

// A kill -9 after any step of any operation, followed by any silo command,
// leaves the records and the pools in agreement, and the operation either
// finished or undone.
func TestCrashSafety(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			testCrashes(t, e, driver)
		})
	}
}

func testCrashes(t *testing.T, e *env, driver string) {
	pool := e.poolArgs()
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	e.ok(append([]string{"create", "tiny", "base"}, pool...)...)
	e.ok("snapshot", "create", "base", "s")
	freshImage := func(n int) string {
		return writeFile(t, rootfs(t, &tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("n%d/", n), Mode: 0o755}))
	}
	has := func(list []string, name string) bool { return slices.Contains(list, name) }
	instances := func(e *env) []string {
		var l []struct{ Name string }
		e.json(&l, "list")
		var names []string
		for _, i := range l {
			names = append(names, i.Name)
		}
		return names
	}
	alias := func(e *env, a string) bool { return e.run("image", "info", a).code == 0 }
	snapshots := func(e *env) []string {
		var l []struct{ Name string }
		e.json(&l, "snapshot", "list", "base")
		var names []string
		for _, s := range l {
			names = append(names, s.Name)
		}
		return names
	}
	var files = map[int]string{}
	cases := []crashCase{
		{
			kind: "image-import", steps: []string{"begun", "saved", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) { files[n] = freshImage(n) },
			cmd:   func(n int) []string { return []string{"image", "import", files[n], "--alias", fmt.Sprintf("im%d", n)} },
			state: func(e *env, n int) bool { return alias(e, fmt.Sprintf("im%d", n)) },
		},
		{
			kind: "image-unpack", steps: []string{"begun", "unpacked", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) { e.ok("image", "import", freshImage(n), "--alias", fmt.Sprintf("un%d", n)) },
			cmd: func(n int) []string {
				return append([]string{"create", fmt.Sprintf("un%d", n), fmt.Sprintf("un%d", n)}, pool...)
			},
			// The instance is never made: only the image base may be.
			state: func(e *env, n int) bool {
				return len(e.bases(fmt.Sprintf("un%d", n))) > 0
			},
		},
		{
			kind: "create", steps: []string{"begun", "cloned", "committed"}, done: []string{"committed"},
			cmd:   func(n int) []string { return append([]string{"create", "tiny", fmt.Sprintf("c%d", n)}, pool...) },
			state: func(e *env, n int) bool { return has(instances(e), fmt.Sprintf("c%d", n)) },
		},
		{
			kind: "copy", steps: []string{"begun", "copied", "committed"}, done: []string{"committed"},
			cmd:   func(n int) []string { return []string{"copy", "base/s", fmt.Sprintf("cp%d", n)} },
			state: func(e *env, n int) bool { return has(instances(e), fmt.Sprintf("cp%d", n)) },
		},
		{
			kind: "snapshot", steps: []string{"begun", "snapshotted", "committed"}, done: []string{"committed"},
			cmd:   func(n int) []string { return []string{"snapshot", "create", "base", fmt.Sprintf("sn%d", n)} },
			state: func(e *env, n int) bool { return has(snapshots(e), fmt.Sprintf("sn%d", n)) },
		},
		{
			kind: "restore", steps: []string{"begun", "cloned", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) { e.ok("file", "push", "-", "base/marker") },
			cmd:   func(n int) []string { return []string{"snapshot", "restore", "base", "s"} },
			// snapshot s has no /marker.
			state: func(e *env, n int) bool { return e.run("file", "pull", "base/marker", "-").code == 3 },
		},
		{
			kind: "import", steps: []string{"begun", "received", "committed"}, done: []string{"committed"},
			setup: func(e *env, n int) {
				files[n] = filepath.Join(e.state, fmt.Sprintf("backup%d", n))
				e.ok("export", "base", "-o", files[n])
			},
			cmd:   func(n int) []string { return append([]string{"import", files[n], fmt.Sprintf("imp%d", n)}, pool...) },
			state: func(e *env, n int) bool { return has(instances(e), fmt.Sprintf("imp%d", n)) },
		},
		{
			kind: "delete", steps: []string{"begun"}, done: []string{"begun"},
			setup: func(e *env, n int) { e.ok("copy", "base", fmt.Sprintf("d%d", n)) },
			cmd:   func(n int) []string { return []string{"delete", fmt.Sprintf("d%d", n)} },
			state: func(e *env, n int) bool { return !has(instances(e), fmt.Sprintf("d%d", n)) },
		},
		{
			kind: "snapshot-delete", steps: []string{"begun"}, done: []string{"begun"},
			setup: func(e *env, n int) { e.ok("snapshot", "create", "base", fmt.Sprintf("ds%d", n)) },
			cmd:   func(n int) []string { return []string{"snapshot", "delete", "base", fmt.Sprintf("ds%d", n)} },
			state: func(e *env, n int) bool { return !has(snapshots(e), fmt.Sprintf("ds%d", n)) },
		},
		{
			kind: "image-delete", steps: []string{"begun"}, done: []string{"begun"},
			setup: func(e *env, n int) {
				e.ok("image", "import", freshImage(n), "--alias", fmt.Sprintf("del%d", n))
				// Give it a base volume on the pool, which must go too.
				e.ok(append([]string{"create", fmt.Sprintf("del%d", n), fmt.Sprintf("del%d", n)}, pool...)...)
				e.ok("delete", fmt.Sprintf("del%d", n))
			},
			cmd:   func(n int) []string { return []string{"image", "delete", fmt.Sprintf("del%d", n)} },
			state: func(e *env, n int) bool { return !alias(e, fmt.Sprintf("del%d", n)) },
		},
		{
			kind: "pool-create", steps: []string{"begun", "created", "committed"}, done: []string{"committed"},
			cmd: func(n int) []string {
				args := []string{"pool", "create", fmt.Sprintf("q%d", n), "--driver", driver}
				if driver != "dir" {
					args = append(args, "--size", "256MiB")
				}
				return args
			},
			state: func(e *env, n int) bool { return e.run("pool", "info", fmt.Sprintf("q%d", n)).code == 0 },
		},
		{
			kind: "pool-delete", steps: []string{"begun"}, done: []string{"begun"},
			setup: func(e *env, n int) { e.ok("pool", "create", fmt.Sprintf("pd%d", n), "--driver", "dir") },
			cmd:   func(n int) []string { return []string{"pool", "delete", fmt.Sprintf("pd%d", n)} },
			state: func(e *env, n int) bool { return e.run("pool", "info", fmt.Sprintf("pd%d", n)).code == 3 },
		},
	}
	runCrashes(t, e, cases, nil)
}

// runCrashes kills each case's command after each of its steps, then runs
// any silo command, and checks that the records and the pools agree, that
// check holds (if not nil), and that the operation is either done or
// undone; undone, the same command then works.
func runCrashes(t *testing.T, e *env, cases []crashCase, check func(e *env)) {
	defer func() { e.t = t }()
	checks := func() {
		if check != nil {
			check(e)
		}
		e.consistent()
	}
	n := 0
	for _, c := range cases {
		name := c.name
		if name == "" {
			name = c.kind
		}
		for _, step := range c.steps {
			n++
			t.Run(name+"/"+step, func(t *testing.T) {
				e.t = t
				if c.setup != nil {
					c.setup(e, n)
				}
				crash := *e
				crash.extra = []string{"SILO_CRASH_AT=" + c.kind + "/" + step}
				if r := crash.run(c.cmd(n)...); r.signal != syscall.SIGKILL {
					t.Fatalf("silo %v was not killed at %s/%s: exit %d, %s", c.cmd(n), c.kind, step, r.code, r.err)
				}
				e.ok("list") // any command recovers
				checks()
				want := slices.Contains(c.done, step)
				if got := c.state(e, n); got != want {
					t.Fatalf("after a crash at %s/%s the operation is done: %v, want %v", c.kind, step, got, want)
				}
				if !want {
					// Undone: the same command now works.
					e.ok(c.cmd(n)...)
					checks()
				}
			})
		}
	}
}
