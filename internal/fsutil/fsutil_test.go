package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/testutil"
)

// Both ways of telling a mount point, statx's and the mount table's, on
// a tmpfs mounted for the test.
func TestIsMountPoint(t *testing.T) {
	testutil.NeedRoot(t, "the test mounts a tmpfs")
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	file := filepath.Join(dir, "file")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("mnt", link); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want map[string]bool) {
		t.Helper()
		for name, fn := range map[string]func(string) (bool, error){"statx": IsMountPoint, "mountinfo": inMountTable} {
			for path, w := range want {
				got, err := fn(path)
				if err != nil || got != w {
					t.Errorf("%s, %s(%s) = %v, %v; want %v", when, name, path, got, err, w)
				}
			}
		}
	}
	notMounted := map[string]bool{mnt: false, file: false, link: false, filepath.Join(dir, "missing"): false, filepath.Join(file, "x"): false, "/": true}
	check("before the mount", notMounted)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	check("mounted", map[string]bool{mnt: true, mnt + "/": true, link: false, dir: false})
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	check("after the unmount", notMounted)
}

// A holder that unlinks its lock file before it lets go passes the lock to
// no one: a waiter that opened the old file, and a newcomer that made a
// new one, never hold the lock of the path at once.
func TestLockFileAcrossUnlink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "instance-a.lock")
	first, err := LockFile(path, unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *os.File)
	go func() {
		f, err := LockFile(path, unix.LOCK_EX)
		if err != nil {
			t.Error(err)
		}
		got <- f
	}()
	// The waiter has the old file open (and waits for its lock, or is
	// about to) when a second descriptor of it shows.
	for openFiles(t, path) < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	newcomer, err := LockFile(path, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		t.Fatalf("a newcomer after the unlink: %v", err)
	}
	first.Close()
	select {
	case f := <-got:
		f.Close()
		t.Fatal("the waiter holds the lock of the unlinked file while the newcomer holds the path's")
	case <-time.After(200 * time.Millisecond):
	}
	newcomer.Close()
	select {
	case f := <-got:
		f.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the lock once the newcomer let go")
	}
}

// openFiles counts this process's descriptors of the file at path.
func openFiles(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); target == path {
			n++
		}
	}
	return n
}
