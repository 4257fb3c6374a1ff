package fsutil

import (
	"os"
	"path/filepath"
	"testing"

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
