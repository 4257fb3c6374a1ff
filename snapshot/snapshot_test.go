package snapshot

import (
	"errors"
	"reflect"
	"testing"

	"github.com/silo-dev/silo/errkind"
)

// snaps builds snapshots from name/volume pairs; a snapshot's ID is its
// name with "id-" in front.
func snaps(pairs ...string) []Snapshot {
	var out []Snapshot
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Snapshot{Name: pairs[i], ID: "id-" + pairs[i], Volume: pairs[i+1]})
	}
	return out
}

// norm makes empty lists nil, so that trees compare by what they hold.
func norm(t Tree) Tree {
	if len(t.Retired) == 0 {
		t.Retired = nil
	}
	if len(t.Snapshots) == 0 {
		t.Snapshots = nil
	}
	return t
}

// ended checks err against the kind of error a case wants, none or one,
// and reports whether the case ends with it.
func ended(t *testing.T, err, kind error) bool {
	t.Helper()
	if kind == nil && err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want %v", err, kind)
	}
	return kind != nil
}

func TestRestore(t *testing.T) {
	cases := []struct {
		name    string
		in      Tree
		snap    string
		newHead string
		want    Tree
		from    string // the volume the clone is made from
		kind    error
	}{
		{
			name: "the first restore retires the head its snapshots live in",
			in:   Tree{Head: "v0", Snapshots: snaps("a", "v0", "b", "v0")},
			snap: "a", newHead: "v1", from: "v0",
			want: Tree{Head: "v1", Retired: []string{"v0"}, Snapshots: snaps("a", "v0", "b", "v0")},
		},
		{
			name: "a head with no snapshot is retired all the same: a restore deletes nothing",
			in:   Tree{Head: "v1", Retired: []string{"v0"}, Snapshots: snaps("a", "v0")},
			snap: "a", newHead: "v2", from: "v0",
			want: Tree{Head: "v2", Retired: []string{"v0", "v1"}, Snapshots: snaps("a", "v0")},
		},
		{
			name: "a newer snapshot in a retired head",
			in:   Tree{Head: "v1", Retired: []string{"v0"}, Snapshots: snaps("a", "v0", "b", "v0", "c", "v1")},
			snap: "b", newHead: "v2", from: "v0",
			want: Tree{Head: "v2", Retired: []string{"v0", "v1"}, Snapshots: snaps("a", "v0", "b", "v0", "c", "v1")},
		},
		{
			name: "a snapshot of the current head",
			in:   Tree{Head: "v1", Retired: []string{"v0"}, Snapshots: snaps("a", "v0", "c", "v1")},
			snap: "c", newHead: "v2", from: "v1",
			want: Tree{Head: "v2", Retired: []string{"v0", "v1"}, Snapshots: snaps("a", "v0", "c", "v1")},
		},
		{
			name: "no such snapshot",
			in:   Tree{Head: "v0", Snapshots: snaps("a", "v0")},
			snap: "z", newHead: "v1", kind: errkind.NotFound,
		},
		{
			name: "into the head",
			in:   Tree{Head: "v0", Snapshots: snaps("a", "v0")},
			snap: "a", newHead: "v0", kind: errkind.Invalid,
		},
		{
			name: "into a retired head",
			in:   Tree{Head: "v1", Retired: []string{"v0"}, Snapshots: snaps("a", "v0")},
			snap: "a", newHead: "v0", kind: errkind.Invalid,
		},
		{
			name: "into no volume",
			in:   Tree{Head: "v0", Snapshots: snaps("a", "v0")},
			snap: "a", newHead: "", kind: errkind.Invalid,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.in.clone()
			got, from, err := Restore(c.in, c.snap, c.newHead)
			if ended(t, err, c.kind) {
				return
			}
			if !reflect.DeepEqual(norm(got), norm(c.want)) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if from.Name != c.snap || from.Volume != c.from || from.ID != "id-"+c.snap {
				t.Fatalf("cloned from %+v", from)
			}
			if !reflect.DeepEqual(c.in, before) {
				t.Fatalf("the tree given changed: %+v", c.in)
			}
		})
	}
}

func TestCollect(t *testing.T) {
	cases := []struct {
		name  string
		in    Tree
		holds bool
		kept  []string
		gone  []string
	}{
		{
			name:  "nothing retired",
			in:    Tree{Head: "v0", Snapshots: snaps("a", "v0")},
			holds: true,
		},
		{
			name:  "a head its snapshots need stays",
			in:    Tree{Head: "v1", Retired: []string{"v0"}, Snapshots: snaps("a", "v0")},
			holds: true, kept: []string{"v0"},
		},
		{
			name:  "heads of repeated restores go, the one with snapshots stays",
			in:    Tree{Head: "v3", Retired: []string{"v0", "v1", "v2"}, Snapshots: snaps("a", "v0", "b", "v0")},
			holds: true, kept: []string{"v0"}, gone: []string{"v1", "v2"},
		},
		{
			name:  "snapshots that need no head: every retired head goes",
			in:    Tree{Head: "v3", Retired: []string{"v0", "v1", "v2"}, Snapshots: snaps("a", "v0", "c", "v2")},
			holds: false, gone: []string{"v0", "v1", "v2"},
		},
		{
			name:  "heads taken over by snapshots of later heads",
			in:    Tree{Head: "v3", Retired: []string{"v0", "v1", "v2"}, Snapshots: snaps("c", "v2")},
			holds: true, kept: []string{"v2"}, gone: []string{"v0", "v1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.in.clone()
			got, gone := Collect(c.in, c.holds)
			if !reflect.DeepEqual(norm(got).Retired, c.kept) {
				t.Fatalf("kept %v, want %v", got.Retired, c.kept)
			}
			if !reflect.DeepEqual(gone, c.gone) {
				t.Fatalf("gone %v, want %v", gone, c.gone)
			}
			if got.Head != c.in.Head || !reflect.DeepEqual(got.Snapshots, c.in.Snapshots) {
				t.Fatalf("collect changed more than the retired heads: %+v", got)
			}
			if !reflect.DeepEqual(c.in, before) {
				t.Fatalf("the tree given changed: %+v", c.in)
			}
		})
	}
}

func TestDeleteSnapshot(t *testing.T) {
	retired := Tree{Head: "v2", Retired: []string{"v0", "v1"}, Snapshots: snaps("a", "v0", "b", "v0", "c", "v1")}
	cases := []struct {
		name  string
		in    Tree
		snap  string
		holds bool
		want  Tree
		gone  []string
		kind  error
	}{
		{
			name: "not the last in its retired head",
			in:   retired, snap: "a", holds: true,
			want: Tree{Head: "v2", Retired: []string{"v0", "v1"}, Snapshots: snaps("b", "v0", "c", "v1")},
		},
		{
			name: "the last in its retired head takes it along",
			in:   retired, snap: "c", holds: true,
			want: Tree{Head: "v2", Retired: []string{"v0"}, Snapshots: snaps("a", "v0", "b", "v0")},
			gone: []string{"v1"},
		},
		{
			name: "and with it any head no snapshot needs",
			in:   Tree{Head: "v3", Retired: []string{"v0", "v1", "v2"}, Snapshots: snaps("a", "v0", "b", "v0")},
			snap: "b", holds: true,
			want: Tree{Head: "v3", Retired: []string{"v0"}, Snapshots: snaps("a", "v0")},
			gone: []string{"v1", "v2"},
		},
		{
			name: "the last in the head leaves the head",
			in:   Tree{Head: "v0", Snapshots: snaps("a", "v0")},
			snap: "a", holds: true,
			want: Tree{Head: "v0"},
		},
		{
			name: "where snapshots need no head, the retired heads all go",
			in:   retired, snap: "a", holds: false,
			want: Tree{Head: "v2", Snapshots: snaps("b", "v0", "c", "v1")},
			gone: []string{"v0", "v1"},
		},
		{
			name: "no such snapshot",
			in:   retired, snap: "z", holds: true, kind: errkind.NotFound,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.in.clone()
			got, s, gone, err := DeleteSnapshot(c.in, c.snap, c.holds)
			if ended(t, err, c.kind) {
				return
			}
			if s.Name != c.snap {
				t.Fatalf("deleted %+v", s)
			}
			if !reflect.DeepEqual(norm(got), norm(c.want)) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if !reflect.DeepEqual(gone, c.gone) {
				t.Fatalf("gone %v, want %v", gone, c.gone)
			}
			if !reflect.DeepEqual(c.in, before) {
				t.Fatalf("the tree given changed: %+v", c.in)
			}
		})
	}
}
