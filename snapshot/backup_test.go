package snapshot

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/silo-dev/silo/errkind"
)

func TestChain(t *testing.T) {
	cases := []struct {
		name  string
		snaps []Snapshot
		head  string
		want  []Send
	}{
		{
			name: "the head alone",
			head: "v0",
			want: []Send{{Volume: "v0"}},
		},
		{
			name:  "one volume: each incremental against the one before",
			snaps: snaps("a", "v0", "b", "v0"),
			head:  "v0",
			want: []Send{
				{Snapshot: "a", Volume: "v0", ID: "id-a"},
				{Snapshot: "b", Volume: "v0", ID: "id-b", Parent: "a", ParentID: "id-a"},
				{Volume: "v0", Parent: "b", ParentID: "id-b"},
			},
		},
		{
			name:  "a restore, then snapshots of the new head: whole where the volume changes",
			snaps: snaps("a", "v0", "b", "v0", "c", "v1", "d", "v1"),
			head:  "v1",
			want: []Send{
				{Snapshot: "a", Volume: "v0", ID: "id-a"},
				{Snapshot: "b", Volume: "v0", ID: "id-b", Parent: "a", ParentID: "id-a"},
				{Snapshot: "c", Volume: "v1", ID: "id-c"},
				{Snapshot: "d", Volume: "v1", ID: "id-d", Parent: "c", ParentID: "id-c"},
				{Volume: "v1", Parent: "d", ParentID: "id-d"},
			},
		},
		{
			name:  "a restore and no snapshot since: the head whole",
			snaps: snaps("a", "v0", "b", "v0"),
			head:  "v1",
			want: []Send{
				{Snapshot: "a", Volume: "v0", ID: "id-a"},
				{Snapshot: "b", Volume: "v0", ID: "id-b", Parent: "a", ParentID: "id-a"},
				{Volume: "v1"},
			},
		},
		{
			name:  "restores again and again: every head whole",
			snaps: snaps("a", "v0", "b", "v2"),
			head:  "v4",
			want: []Send{
				{Snapshot: "a", Volume: "v0", ID: "id-a"},
				{Snapshot: "b", Volume: "v2", ID: "id-b"},
				{Volume: "v4"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Chain(c.snaps, c.head); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// counter names new volumes n0, n1... in the order asked for.
func counter() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("n%d", n-1)
	}
}

// ids gives the backup's snapshots their new IDs, on no volume yet.
func ids(names ...string) []Snapshot {
	var out []Snapshot
	for _, n := range names {
		out = append(out, Snapshot{Name: n, ID: "id-" + n})
	}
	return out
}

func TestLand(t *testing.T) {
	cases := []struct {
		name     string
		snaps    []Snapshot
		streams  []Stream
		want     Tree
		receives []Receive
		bad      bool
	}{
		{
			name:  "the portable form: every snapshot in the head",
			snaps: ids("a", "b"),
			want:  Tree{Head: "n0", Snapshots: snaps("a", "n0", "b", "n0")},
		},
		{
			name:     "the head alone",
			streams:  []Stream{{}},
			want:     Tree{Head: "n0"},
			receives: []Receive{{Volume: "n0"}},
		},
		{
			name:    "one volume",
			snaps:   ids("a", "b"),
			streams: []Stream{{Snapshot: "a"}, {Snapshot: "b", Parent: "a"}, {Parent: "b"}},
			want:    Tree{Head: "n0", Snapshots: snaps("a", "n0", "b", "n0")},
			receives: []Receive{
				{Volume: "n0", ID: "id-a"},
				{Volume: "n0", ID: "id-b", ParentID: "id-a"},
				{Volume: "n0", ParentID: "id-b"},
			},
		},
		{
			name:    "a restore in the source: a retired head, and the head goes on from the second volume",
			snaps:   ids("a", "b", "c"),
			streams: []Stream{{Snapshot: "a"}, {Snapshot: "b", Parent: "a"}, {Snapshot: "c"}, {Parent: "c"}},
			want:    Tree{Head: "n1", Retired: []string{"n0"}, Snapshots: snaps("a", "n0", "b", "n0", "c", "n1")},
			receives: []Receive{
				{Volume: "n0", ID: "id-a"},
				{Volume: "n0", ID: "id-b", ParentID: "id-a"},
				{Volume: "n1", ID: "id-c"},
				{Volume: "n1", ParentID: "id-c"},
			},
		},
		{
			name:    "restores again and again: each whole stream a volume of its own",
			snaps:   ids("a", "b"),
			streams: []Stream{{Snapshot: "a"}, {Snapshot: "b"}, {}},
			want:    Tree{Head: "n2", Retired: []string{"n0", "n1"}, Snapshots: snaps("a", "n0", "b", "n1")},
			receives: []Receive{
				{Volume: "n0", ID: "id-a"},
				{Volume: "n1", ID: "id-b"},
				{Volume: "n2"},
			},
		},
		{name: "no head", snaps: ids("a"), streams: []Stream{{Snapshot: "a"}}, bad: true},
		{name: "the head first", snaps: ids("a"), streams: []Stream{{}, {Snapshot: "a"}}, bad: true},
		{name: "two heads", streams: []Stream{{}, {}}, bad: true},
		{name: "a snapshot the index does not list", snaps: ids("a"), streams: []Stream{{Snapshot: "a"}, {Snapshot: "x"}, {}}, bad: true},
		{name: "a snapshot twice", snaps: ids("a"), streams: []Stream{{Snapshot: "a"}, {Snapshot: "a"}, {}}, bad: true},
		{name: "a snapshot in no stream", snaps: ids("a", "b"), streams: []Stream{{Snapshot: "a"}, {}}, bad: true},
		{name: "a parent that comes later", snaps: ids("a", "b"), streams: []Stream{{Snapshot: "a", Parent: "b"}, {Snapshot: "b"}, {}}, bad: true},
		{name: "a parent of its own", snaps: ids("a"), streams: []Stream{{Snapshot: "a", Parent: "a"}, {}}, bad: true},
		{name: "an unknown parent", snaps: ids("a"), streams: []Stream{{Snapshot: "a"}, {Parent: "x"}}, bad: true},
		{
			name:    "a parent that is no longer the newest in its volume",
			snaps:   ids("a", "b"),
			streams: []Stream{{Snapshot: "a"}, {Snapshot: "b", Parent: "a"}, {Parent: "a"}},
			bad:     true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, receives, err := Land(c.snaps, c.streams, counter())
			if c.bad {
				if !errors.Is(err, errkind.Invalid) {
					t.Fatalf("got %+v, %v; want an invalid backup", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(norm(got), norm(c.want)) {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			if !reflect.DeepEqual(receives, c.receives) {
				t.Fatalf("receives %+v\nwant %+v", receives, c.receives)
			}
		})
	}
}

// A random history of snapshots, restores, snapshot deletions and
// collections keeps the model's invariants, and its optimized backup lands
// as a tree of the same shape.
func TestHistories(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		holds := seed%2 == 0
		rng := rand.New(rand.NewSource(seed))
		tr := Tree{Head: "v0"}
		vols, snapN := 1, 0
		var history []string
		for step := 0; step < 30; step++ {
			switch op := rng.Intn(4); {
			case op == 0 || len(tr.Snapshots) == 0:
				name := fmt.Sprintf("s%d", snapN)
				snapN++
				tr.Snapshots = append(tr.Snapshots, Snapshot{Name: name, ID: "id-" + name, Volume: tr.Head})
				history = append(history, "snapshot "+name)
			case op == 1:
				s := tr.Snapshots[rng.Intn(len(tr.Snapshots))]
				head := fmt.Sprintf("v%d", vols)
				vols++
				var err error
				if tr, _, err = Restore(tr, s.Name, head); err != nil {
					t.Fatalf("seed %d: %v after %v", seed, err, history)
				}
				history = append(history, "restore "+s.Name)
			case op == 2:
				s := tr.Snapshots[rng.Intn(len(tr.Snapshots))]
				var err error
				if tr, _, _, err = DeleteSnapshot(tr, s.Name, holds); err != nil {
					t.Fatalf("seed %d: %v after %v", seed, err, history)
				}
				history = append(history, "delete "+s.Name)
			default:
				tr, _ = Collect(tr, holds)
				history = append(history, "collect")
			}
			checkTree(t, tr, holds, false, history)
		}
		tr, _ = Collect(tr, holds)
		checkTree(t, tr, holds, true, history)
		checkRoundTrip(t, tr, history)
	}
}

// checkTree checks that no volume is listed twice; where snapshots need
// their head, that every snapshot lives in the head or a retired head;
// and, once collected, that every retired head left is one that
// snapshots still need.
func checkTree(t *testing.T, tr Tree, holds, collected bool, history []string) {
	t.Helper()
	seen := map[string]bool{tr.Head: true}
	for _, v := range tr.Retired {
		if seen[v] {
			t.Fatalf("volume %s listed twice in %+v after %v", v, tr, history)
		}
		seen[v] = true
		if collected && (!holds || tr.SnapshotsIn(v) == 0) {
			t.Fatalf("retired head %s left after a collection in %+v after %v", v, tr, history)
		}
	}
	for _, s := range tr.Snapshots {
		if holds && !seen[s.Volume] {
			t.Fatalf("snapshot %s lives in %s, which the tree lost: %+v after %v", s.Name, s.Volume, tr, history)
		}
	}
}

// checkRoundTrip plans tr's optimized backup, lands it, and checks that
// the landed tree is tr with its volumes renamed.
func checkRoundTrip(t *testing.T, tr Tree, history []string) {
	t.Helper()
	sends := Chain(tr.Snapshots, tr.Head)
	streams := make([]Stream, len(sends))
	for k, s := range sends {
		streams[k] = Stream{Snapshot: s.Snapshot, Parent: s.Parent}
	}
	got, receives, err := Land(ids(names(tr.Snapshots)...), streams, counter())
	if err != nil {
		t.Fatalf("landing the backup of %+v: %v after %v", tr, err, history)
	}
	rename := map[string]string{tr.Head: got.Head}
	same := func(from, to string) {
		if r, ok := rename[from]; ok && r != to || !ok && contains(rename, to) {
			t.Fatalf("volumes %s and %s do not map one to one: %+v landed as %+v after %v", from, to, tr, got, history)
		}
		rename[from] = to
	}
	for i, s := range tr.Snapshots {
		same(s.Volume, got.Snapshots[i].Volume)
		if got.Snapshots[i].Name != s.Name {
			t.Fatalf("snapshot %d is %s, not %s", i, got.Snapshots[i].Name, s.Name)
		}
	}
	for k, s := range sends {
		if r := receives[k]; r.Volume != rename[s.Volume] || (r.ParentID == "") != (s.ParentID == "") {
			t.Fatalf("stream %d sent as %+v lands as %+v", k, s, r)
		}
	}
	// Every other volume a snapshot lives in lands as a retired head.
	others := map[string]bool{}
	for _, s := range tr.Snapshots {
		if s.Volume != tr.Head {
			others[s.Volume] = true
		}
	}
	if got.SnapshotsIn(got.Head) != tr.SnapshotsIn(tr.Head) || len(got.Retired) != len(others) {
		t.Fatalf("%+v landed as %+v after %v", tr, got, history)
	}
}

func names(s []Snapshot) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].Name
	}
	return out
}

func contains(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}
