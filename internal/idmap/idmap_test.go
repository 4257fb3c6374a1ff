package idmap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-dev/silo/errkind"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "subid")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Root's range is its entry in the files; the default where a file is
// missing or names none for root (Debian ships them empty); a malformed
// or too small entry is refused as invalid.
func TestRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	def := Map{UID: DefaultBase, GID: DefaultBase, Size: DefaultSize}
	for _, c := range []struct {
		uid, gid string
		want     Map
		err      string
	}{
		{missing, missing, def, ""},
		{write(t, ""), write(t, ""), def, ""},
		{write(t, "alice:100000:65536\n"), missing, def, ""},
		{write(t, "alice:100000:65536\nroot:200000:1000000\n"), write(t, "root:300000:2000000\n"), Map{UID: 200000, GID: 300000, Size: 1000000}, ""},
		{write(t, "0:200000:65536\n"), missing, Map{UID: 200000, GID: DefaultBase, Size: 65536}, ""},
		{write(t, "root:200000\n"), missing, Map{}, "is not root:BASE:COUNT"},
		{write(t, "root:x:65536\n"), missing, Map{}, "is not root:BASE:COUNT"},
		{write(t, "root:4294967000:65536\n"), missing, Map{}, "is not root:BASE:COUNT"},
		{write(t, "root:100000:1000\n"), missing, Map{}, "fewer than the 65536"},
	} {
		got, err := Root(c.uid, c.gid)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("Root(%s, %s) = %+v, %v; want %+v", c.uid, c.gid, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errkind.Invalid)):
			t.Errorf("Root(%s, %s): error %v, want an invalid one with %q", c.uid, c.gid, err, c.err)
		}
	}
}

// Isolated ranges are disjoint, past the first 65536 IDs, within both of
// root's ranges; a base asked for is refused when it overlaps another or
// leaves root's range.
func TestIsolated(t *testing.T) {
	root := Map{UID: 1000000, GID: 1000000, Size: 1000000}
	var taken []Range
	for range 3 {
		r, err := Isolated(root, taken, 0, 65536)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range append(taken, Range{root.UID, MinSize}) {
			if r.Overlaps(o) {
				t.Fatalf("range %+v overlaps %+v", r, o)
			}
		}
		taken = append(taken, r)
	}
	if taken[0].Base != 1065536 || taken[2].Base != 1196608 {
		t.Fatalf("ranges %+v: want them packed from 1065536", taken)
	}
	// A hole that fits is used; one that does not is skipped.
	holed := []Range{{1065536, 65536}, {1196608, 65536}, {1300000, 100}}
	if r, err := Isolated(root, holed, 0, 65536); err != nil || r.Base != 1131072 {
		t.Fatalf("into the hole: %+v, %v", r, err)
	}
	if r, err := Isolated(root, holed, 0, 100000); err != nil || r.Base != 1300100 {
		t.Fatalf("past a hole too small: %+v, %v", r, err)
	}
	if r, err := Isolated(root, taken, 1500000, 70000); err != nil || r != (Range{1500000, 70000}) {
		t.Fatalf("a free base asked for: %+v, %v", r, err)
	}
	for _, c := range []struct {
		base, size uint32
		kind       error
		err        string
	}{
		{1100000, 65536, errkind.Invalid, "overlaps the isolated range 1065536-1131071"},
		{999999, 65536, errkind.Invalid, "not within root's subordinate range"},
		{1000000, 65536, errkind.Invalid, "the IDs that the instances without an isolated range share"},
		{1065535, 65536, errkind.Invalid, "the IDs that the instances without an isolated range share"},
		{1990000, 65536, errkind.Invalid, "not within root's subordinate range"},
		{0, 1000, errkind.Invalid, "at least 65536"},
		{0, 900000, errkind.NoSpace, "no free range of 900000 IDs"},
	} {
		_, err := Isolated(root, taken, c.base, c.size)
		if err == nil || !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Isolated(base %d, size %d): %v, want %v with %q", c.base, c.size, err, c.kind, c.err)
		}
	}
	// UIDs and GIDs at different places: the range lies in both.
	skew := Map{UID: 100000, GID: 150000, Size: 200000}
	if r, err := Isolated(skew, nil, 0, 65536); err != nil || r.Base != 150000+MinSize {
		t.Fatalf("skewed ranges: %+v, %v", r, err)
	}
}

func TestParse(t *testing.T) {
	for text, want := range map[string][3]uint32{
		"         0    1000000 1000000000\n": {1000000, 1000000000, 1},
		"         0          0 4294967295\n": {0, 0, 0},
		"":                                   {0, 0, 0},
		"1 1000000 10\n":                     {0, 0, 0},
	} {
		h, n, ok := Parse(text)
		if h != want[0] || n != want[1] || ok != (want[2] == 1) {
			t.Errorf("Parse(%q) = %d, %d, %v", text, h, n, ok)
		}
	}
}

func TestShift(t *testing.T) {
	a := &Map{UID: 1000000, GID: 2000000, Size: 100000}
	b := &Map{UID: 5000000, GID: 5000000, Size: 65536}
	cases := []struct {
		s        Shift
		uid, gid uint32
		wu, wg   uint32
	}{
		{Shift{}, 7, 8, 7, 8},
		{Shift{a, a}, 7, 8, 7, 8},
		{Shift{To: a}, 0, 5, 1000000, 2000005},
		{Shift{To: a}, 200000, 99999, 1000000 + Nobody, 2099999}, // past the map: nobody
		{Shift{From: a}, 1000000, 2000005, 0, 5},
		{Shift{From: a}, 0, 3, Nobody, Nobody}, // below the map: nobody
		{Shift{a, b}, 1000042, 2070000, 5000042, 5000000 + Nobody},
	}
	for _, c := range cases {
		if u, g := c.s.UID(c.uid), c.s.GID(c.gid); u != c.wu || g != c.wg {
			t.Errorf("%+v of %d:%d = %d:%d, want %d:%d", c.s, c.uid, c.gid, u, g, c.wu, c.wg)
		}
	}
	// user_obj, user 1000, group 100, mask, other
	acl := []byte{2, 0, 0, 0,
		1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,
		2, 0, 6, 0, 0xe8, 0x03, 0, 0,
		8, 0, 4, 0, 100, 0, 0, 0,
		0x10, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	got := Shift{To: a}.ACL(acl)
	le := func(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 }
	if le(got[4+8+4:]) != 1001000 || le(got[4+16+4:]) != 2000100 || le(got[4+4:]) != 0xffffffff || le(acl[4+8+4:]) != 1000 {
		t.Fatalf("shifted ACL %v", got)
	}
	if back := (Shift{From: a}).ACL(got); string(back) != string(acl) {
		t.Fatalf("unshifted ACL %v, want %v", back, acl)
	}
}
