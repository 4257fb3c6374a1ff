package idshift

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/testutil"
)

type owner struct {
	uid, gid uint32
	mode     uint32
}

func owners(t *testing.T, root string) map[string]owner {
	t.Helper()
	out := map[string]owner{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = owner{st.Uid, st.Gid, st.Mode}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A tree shifts into a map and back: owners of every kind of entry move
// by the map's offset, set-id bits stay, hard links move once, ACLs
// move, and IDs outside the map become nobody.
func TestTree(t *testing.T) {
	testutil.NeedRoot(t, "chown")
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("su"), 0o755))
	must(unix.Chmod(filepath.Join(root, "usr/bin/su"), 0o4755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/wall"), []byte("w"), 0o755))
	must(os.Lchown(filepath.Join(root, "usr/bin/wall"), 0, 5))
	must(unix.Chmod(filepath.Join(root, "usr/bin/wall"), 0o2755))
	must(os.Link(filepath.Join(root, "usr/bin/wall"), filepath.Join(root, "usr/bin/wall2")))
	must(os.Mkdir(filepath.Join(root, "home"), 0o755))
	must(os.Lchown(filepath.Join(root, "home"), 1000, 1000))
	must(os.Symlink("/etc/shadow", filepath.Join(root, "home/link")))
	must(os.Lchown(filepath.Join(root, "home/link"), 1000, 100))
	must(os.WriteFile(filepath.Join(root, "big"), nil, 0o600))
	must(os.Lchown(filepath.Join(root, "big"), 70000, 70000)) // past the map
	// user_obj rw, user 1000 r, group_obj r, mask r, other none
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 4, 0, 0xe8, 3, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	aclOK := unix.Lsetxattr(filepath.Join(root, "home"), idmap.ACLXattrs[0], acl, 0) == nil
	before := owners(t, root)

	m := &idmap.Map{UID: 1000000, GID: 2000000, Size: 65536}
	must(Tree(context.Background(), root, idmap.Shift{To: m}))
	after := owners(t, root)
	for p, b := range before {
		a := after[p]
		wantU, wantG := b.uid+m.UID, b.gid+m.GID
		if p == "big" {
			wantU, wantG = m.UID+idmap.Nobody, m.GID+idmap.Nobody
		}
		if a.uid != wantU || a.gid != wantG || a.mode != b.mode {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", p, a.uid, a.gid, a.mode, wantU, wantG, b.mode)
		}
	}
	if aclOK {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, "home"), idmap.ACLXattrs[0], buf)
		must(err)
		if got := buf[16:20]; n != len(acl) || uint32(got[0])|uint32(got[1])<<8|uint32(got[2])<<16 != 1001000 {
			t.Errorf("ACL after the shift: %v", buf[:n])
		}
	} else {
		t.Log("this filesystem keeps no ACLs: not checked")
	}

	must(Tree(context.Background(), root, idmap.Shift{From: m}))
	back := owners(t, root)
	before["big"] = owner{idmap.Nobody, idmap.Nobody, before["big"].mode}
	for p, b := range before {
		if back[p] != b {
			t.Errorf("%s after shifting back: %+v, want %+v", p, back[p], b)
		}
	}
}

// File capabilities survive the chown, made out for the shifted root: a
// revision 2 set (for the host's root only) becomes revision 3 with the
// map's root as its root ID.
func TestTreeKeepsFileCaps(t *testing.T) {
	testutil.NeedRoot(t, "chown and security.* xattrs")
	root := t.TempDir()
	ping := filepath.Join(root, "ping")
	if err := os.WriteFile(ping, []byte("ping"), 0o755); err != nil {
		t.Fatal(err)
	}
	// revision 2, effective; permitted CAP_NET_RAW (13)
	v2 := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Lsetxattr(ping, capXattr, v2, 0); err != nil {
		t.Skipf("this filesystem keeps no file capabilities: %v", err)
	}
	m := &idmap.Map{UID: 1000000, GID: 1000000, Size: 65536}
	if err := Tree(context.Background(), root, idmap.Shift{To: m}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(ping, capXattr, buf)
	if err != nil {
		t.Fatalf("the capabilities are gone: %v", err)
	}
	want := append([]byte{1, 0, 0, 3}, v2[4:]...)
	want = append(want, 0x40, 0x42, 0x0f, 0) // 1000000
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("capabilities %x, want %x", buf[:n], want)
	}
}
