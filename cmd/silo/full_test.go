package main

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A pool that fills up in the middle of a receive, an import or a file
// push says so: exit code 6, "the pool is full", and nothing left behind,
// however many layers the failure went through.
func TestPoolFullOnEveryPath(t *testing.T) {
	for _, driver := range []string{"btrfs", "zfs"} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.ok("pool", "create", "small", "--driver", driver, "--size", "128MiB")
			e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
			e.ok("create", "tiny", "little", "--pool", "small")
			// More than the small pool holds, and nothing a driver can compress.
			big := randomFile(t, 160<<20)
			// Privileged: an unprivileged instance's files on zfs-fuse are
			// shifted on disk, which no optimized export carries.
			e.ok("create", "tiny", "src", "--pool", e.pool, "-c", "security.privileged=true")
			e.ok("file", "push", big, "src/big")
			dir := t.TempDir()
			optimized, portable := filepath.Join(dir, "optimized"), filepath.Join(dir, "portable")
			e.ok("export", "src", "-o", optimized, "--optimized", "--compression", "none")
			e.ok("export", "src", "-o", portable, "--compression", "none")

			e.fails(6, "the pool is full", "copy", "src", "copied", "--pool", "small") // a send into a receive
			e.fails(6, "the pool is full", "import", optimized, "received", "--pool", "small")
			e.fails(6, "the pool is full", "import", portable, "unpacked", "--pool", "small")
			e.fails(6, "the pool is full", "file", "push", big, "little/big")
			e.consistent()
			if got := e.ok("file", "pull", "little/etc/hostname", "-"); got != "little\n" {
				t.Fatalf("the instance the pushes failed on reads %q", got)
			}
		})
	}
}

func randomFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "random")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	return p
}
