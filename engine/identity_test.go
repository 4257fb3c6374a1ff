package engine

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/testutil"
)

func TestGiveIdentity(t *testing.T) {
	testutil.NeedRoot(t, "the identity files are given root as their owner")
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := giveIdentity(root, "web", idmap.Shift{}); err != nil {
		t.Fatal(err)
	}
	id, err := os.ReadFile(filepath.Join(etc, "machine-id"))
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{32}\n$`).Match(id) {
		t.Fatalf("machine-id %q, %v", id, err)
	}
	if st, err := os.Stat(filepath.Join(etc, "machine-id")); err != nil || st.Mode().Perm() != 0o444 {
		t.Fatalf("machine-id mode %v, %v", st.Mode(), err)
	}
	if got, err := os.ReadFile(filepath.Join(etc, "hostname")); err != nil || string(got) != "web\n" {
		t.Fatalf("hostname %q, %v", got, err)
	}

	// A hostname that already says the name is left as it is; another is
	// replaced, and a symlink too, its target left alone.
	inode := func(p string) uint64 {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	before := inode(filepath.Join(etc, "hostname"))
	if err := setHostname(root, "web", idmap.Shift{}); err != nil || inode(filepath.Join(etc, "hostname")) != before {
		t.Fatalf("hostname rewritten (%v)", err)
	}
	outside := filepath.Join(t.TempDir(), "hostname")
	if err := os.WriteFile(outside, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(etc, "hostname")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(etc, "hostname")); err != nil {
		t.Fatal(err)
	}
	if err := setHostname(root, "db", idmap.Shift{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(etc, "hostname")); string(got) != "db\n" {
		t.Fatalf("hostname %q", got)
	}
	if got, _ := os.ReadFile(outside); string(got) != "host\n" {
		t.Fatalf("the symlink's target was written: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(etc, ".silo-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// No /etc, or one that is a symlink (it could lead out of the root):
	// nothing is written.
	bare := t.TempDir()
	if err := giveIdentity(bare, "x", idmap.Shift{}); err != nil {
		t.Fatal(err)
	}
	linked := t.TempDir()
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(linked, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := giveIdentity(linked, "x", idmap.Shift{}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{bare, target} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("%s: written %v", dir, entries)
		}
	}
}

// In a volume shifted on disk, the identity files are the root's of the
// map.
func TestGiveIdentityShifted(t *testing.T) {
	testutil.NeedRoot(t, "the identity files are given the map's root as their owner")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := &idmap.Map{UID: 1000000, GID: 2000000, Size: 65536}
	if err := giveIdentity(root, "web", idmap.Shift{To: m}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"machine-id", "hostname"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, "etc", f), &st); err != nil || st.Uid != m.UID || st.Gid != m.GID {
			t.Errorf("%s: owner %d:%d (%v), want %d:%d", f, st.Uid, st.Gid, err, m.UID, m.GID)
		}
	}
}
