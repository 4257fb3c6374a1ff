package copytree_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/silo-dev/silo/internal/copytree"
	"github.com/silo-dev/silo/internal/testutil"
	"github.com/silo-dev/silo/storage/storagetest"
)

func copyAndCompare(t *testing.T, srcParent string) {
	testutil.NeedRoot(t, "copying owners and device nodes")
	src := filepath.Join(srcParent, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	storagetest.WriteFixture(t, src)
	dst := filepath.Join(t.TempDir(), "dst")
	if err := copytree.Copy(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	storagetest.RequireSameTree(t, "copy", src, dst)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dst, "var/sparse"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Fatalf("the 64 MiB sparse file takes %d bytes after the copy", st.Blocks*512)
	}
}

func TestCopy(t *testing.T) { copyAndCompare(t, t.TempDir()) }

// From tmpfs to the test's disk: copy_file_range cannot cross filesystems.
func TestCopyAcrossFilesystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "copytree-")
	if err != nil {
		t.Skip("no /dev/shm to copy from:", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	copyAndCompare(t, shm)
}

func TestCopyRefusesExistingDestination(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	if err := copytree.Copy(context.Background(), src, dst); err == nil {
		t.Fatal("copied onto an existing directory")
	}
}
