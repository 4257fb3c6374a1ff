package container

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/testutil"
)

// A tree mounted idmapped shows the host its files shifted by the map,
// while the files on disk keep their owners; releasing the root leaves
// the tree whole. Run on a tmpfs, which can idmap on every kernel that
// has idmapped mounts.
func TestMountRoot(t *testing.T) {
	testutil.NeedRoot(t, "idmapped mounts need CAP_SYS_ADMIN")
	tmp := t.TempDir()
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(tmp, unix.MNT_DETACH)
	src, run := filepath.Join(tmp, "volume"), filepath.Join(tmp, "run")
	for _, d := range []string{src, run} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(src, "f"), 1000, 1001); err != nil {
		t.Fatal(err)
	}
	ok, err := CanIdmap(src, filepath.Join(tmp, "cache"))
	if err != nil || !ok {
		t.Fatalf("CanIdmap of a tmpfs: %v, %v", ok, err)
	}
	if marks, _ := os.ReadDir(filepath.Join(tmp, "cache")); len(marks) != 1 {
		t.Fatalf("%d answers cached, want 1", len(marks))
	}
	m := idmap.Map{UID: 2000000, GID: 3000000, Size: 65536}
	root := filepath.Join(run, RootDir)
	if err := MountRoot(src, root, m); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) [2]uint32 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return [2]uint32{st.Uid, st.Gid}
	}
	if got := owner(filepath.Join(root, "f")); got != [2]uint32{2001000, 3001001} {
		t.Fatalf("through the idmapped root: %v", got)
	}
	if err := ReleaseRoot(run); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("the root's mount point is left: %v", err)
	}
	if got := owner(filepath.Join(src, "f")); got != [2]uint32{1000, 1001} {
		t.Fatalf("on disk: %v", got)
	}
	if err := ReleaseRoot(run); err != nil {
		t.Fatalf("a second release: %v", err)
	}
}

// What a user namespace with a map costs: a child made in it, stopped at
// its exec, and killed.
func BenchmarkUsernsFD(b *testing.B) {
	testutil.NeedRoot(b, "mapping IDs needs root")
	m := idmap.Map{UID: idmap.DefaultBase, GID: idmap.DefaultBase, Size: idmap.DefaultSize}
	for b.Loop() {
		fd, err := usernsFD(m)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}
