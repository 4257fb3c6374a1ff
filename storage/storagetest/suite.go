// Package storagetest is the conformance suite that every storage driver
// must pass, run on a real filesystem of the driver's kind.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/storage"
)

// NewPool returns a driver for a fresh, created and mounted pool. The suite
// calls it once per test, twice where a second pool is needed, and destroys
// each pool at the end of the test: a pool that cannot be destroyed because
// something was left in it fails the test.
type NewPool func(t *testing.T) storage.Driver

// Run runs the whole suite.
func Run(t *testing.T, newPool NewPool) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"FillSealClone", testFillSealClone},
		{"CloneIsolation", testCloneIsolation},
		{"SnapshotRestore", testSnapshotRestore},
		{"DeleteInAnyOrder", testDeleteInAnyOrder},
		{"Usage", testUsage},
		{"SendReceive", testSendReceive},
		{"Errors", testErrors},
		{"FailureLeavesNothing", testFailureLeavesNothing},
		{"ConcurrentClones", testConcurrentClones},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newSuite(t, newPool))
		})
	}
}

type suite struct {
	ctx     context.Context
	d       storage.Driver
	newPool NewPool
	caps    caps
	fixture string // the fixture tree, on the filesystem under test
}

func newSuite(t *testing.T, newPool NewPool) *suite {
	s := &suite{ctx: context.Background(), newPool: newPool}
	s.d = s.pool(t)
	return s
}

// pool makes a pool that must be empty again, and destroyable, when the test ends.
func (s *suite) pool(t *testing.T) storage.Driver {
	d := s.newPool(t)
	t.Cleanup(func() {
		if err := d.Destroy(context.Background()); err != nil {
			t.Errorf("destroy pool at the end of the test (was something left in it?): %v", err)
		}
	})
	return d
}

// image makes a sealed image base holding the fixture and returns its ID.
func (s *suite) image(t *testing.T, id string) {
	t.Helper()
	err := storage.CreateImageVolume(s.ctx, s.d, id, func(root string) error {
		s.caps = probeCaps(t, root)
		writeFixture(t, root, s.caps)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.fixture, _ = s.d.VolumePath(s.ctx, id)
	t.Cleanup(func() { s.cleanup(t, storage.Ref{Volume: id}) })
}

// cleanup deletes ref at the end of a test unless the test already did.
func (s *suite) cleanup(t *testing.T, ref storage.Ref) {
	var err error
	if ref.Snapshot != "" {
		err = s.d.DeleteSnapshot(context.Background(), ref)
	} else {
		err = s.d.DeleteVolume(context.Background(), ref.Volume)
	}
	if err != nil && !errors.Is(err, errkind.NotFound) {
		t.Errorf("delete %s: %v", ref, err)
	}
}

func (s *suite) clone(t *testing.T, src storage.Ref, dst string) string {
	t.Helper()
	if err := s.d.CloneVolume(s.ctx, src, dst); err != nil {
		t.Fatalf("clone %s to %s: %v", src, dst, err)
	}
	t.Cleanup(func() { s.cleanup(t, storage.Ref{Volume: dst}) })
	return s.path(t, dst)
}

func (s *suite) snapshot(t *testing.T, ref storage.Ref) {
	t.Helper()
	if err := s.d.CreateSnapshot(s.ctx, ref); err != nil {
		t.Fatalf("snapshot %s: %v", ref, err)
	}
	t.Cleanup(func() { s.cleanup(t, ref) })
}

func (s *suite) path(t *testing.T, vol string) string {
	t.Helper()
	p, err := s.d.VolumePath(s.ctx, vol)
	if err != nil {
		t.Fatalf("path of %s: %v", vol, err)
	}
	return p
}

// readSnap returns the content of file rel in a snapshot.
func (s *suite) readSnap(t *testing.T, ref storage.Ref, rel string) string {
	t.Helper()
	root, release, err := s.d.OpenSnapshot(s.ctx, ref)
	if err != nil {
		t.Fatalf("open snapshot %s: %v", ref, err)
	}
	defer func() {
		if err := release(); err != nil {
			t.Errorf("release snapshot %s: %v", ref, err)
		}
	}()
	return readFile(t, filepath.Join(root, rel))
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testFillSealClone(t *testing.T, s *suite) {
	s.image(t, "img")
	inst := s.clone(t, storage.Ref{Volume: "img"}, "inst")
	requireSameTree(t, "clone of the image", s.fixture, inst, s.caps)
	again := s.clone(t, storage.Ref{Volume: "inst"}, "inst2")
	requireSameTree(t, "clone of an instance", s.fixture, again, s.caps)
}

func testCloneIsolation(t *testing.T, s *suite) {
	s.image(t, "img")
	a := s.clone(t, storage.Ref{Volume: "img"}, "a")
	b := s.clone(t, storage.Ref{Volume: "img"}, "b")
	write(t, a, "etc/hostname", "a\n")
	write(t, a, "new-in-a", "a\n")
	if err := os.Remove(filepath.Join(a, "usr/bin/big")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(b, "etc/hostname")); got != "base\n" {
		t.Fatalf("sibling clone sees %q", got)
	}
	if got := readFile(t, filepath.Join(s.fixture, "etc/hostname")); got != "base\n" {
		t.Fatalf("image base sees %q", got)
	}
	for _, p := range []string{filepath.Join(b, "new-in-a"), filepath.Join(s.fixture, "new-in-a")} {
		if exists(p) {
			t.Fatalf("%s appeared outside the clone it was written in", p)
		}
	}
	requireSameTree(t, "untouched sibling", s.fixture, b, s.caps)
	c := s.clone(t, storage.Ref{Volume: "a"}, "c")
	write(t, c, "etc/hostname", "c\n")
	if got := readFile(t, filepath.Join(a, "etc/hostname")); got != "a\n" {
		t.Fatalf("the clone's source sees %q", got)
	}
}

func testSnapshotRestore(t *testing.T, s *suite) {
	s.image(t, "img")
	head := "inst"
	root := s.clone(t, storage.Ref{Volume: "img"}, head)
	// where records the volume each snapshot lives in, as the store does.
	where := map[string]storage.Ref{}
	for i := 1; i <= 3; i++ {
		write(t, root, "etc/hostname", fmt.Sprintf("v%d\n", i))
		ref := storage.Ref{Volume: head, Snapshot: fmt.Sprintf("s%d", i)}
		s.snapshot(t, ref)
		where[ref.Snapshot] = ref
	}
	write(t, root, "etc/hostname", "v4\n")
	write(t, root, "only-in-v4", "x")

	// A restore as silo does it: the snapshot is cloned into a new head,
	// and the head it replaces is deleted later (here, at the next
	// restore), while snapshots live in it and clones of those run.
	retired := ""
	restore := func(snap string, gen int) {
		t.Helper()
		newHead := fmt.Sprintf("inst.%d", gen)
		root = s.clone(t, where[snap], newHead)
		if retired != "" {
			if err := s.d.DeleteVolume(s.ctx, retired); err != nil {
				t.Fatalf("delete the retired head %s: %v", retired, err)
			}
		}
		retired, head = head, newHead
	}
	checkSnaps := func() {
		t.Helper()
		for i := 1; i <= 3; i++ {
			snap := fmt.Sprintf("s%d", i)
			if got := s.readSnap(t, where[snap], "etc/hostname"); got != fmt.Sprintf("v%d\n", i) {
				t.Fatalf("snapshot %s holds %q", snap, got)
			}
		}
	}

	restore("s3", 1) // the newest
	if got := readFile(t, filepath.Join(root, "etc/hostname")); got != "v3\n" {
		t.Fatalf("after restore to s3: %q", got)
	}
	if exists(filepath.Join(root, "only-in-v4")) {
		t.Fatal("restore kept a file written after the snapshot")
	}
	checkSnaps()

	restore("s1", 2) // an older one: s2 and s3 must survive
	if got := readFile(t, filepath.Join(root, "etc/hostname")); got != "v1\n" {
		t.Fatalf("after restore to s1: %q", got)
	}
	checkSnaps()

	// The restored head takes snapshots of its own, and the newer snapshots
	// taken before the restore can still be restored to.
	write(t, root, "etc/hostname", "v5\n")
	s4 := storage.Ref{Volume: head, Snapshot: "s4"}
	s.snapshot(t, s4)
	where["s4"] = s4
	restore("s2", 3)
	if got := readFile(t, filepath.Join(root, "etc/hostname")); got != "v2\n" {
		t.Fatalf("after restore to s2: %q", got)
	}
	requireSameTreeExcept(t, s, root)
	if got := s.readSnap(t, s4, "etc/hostname"); got != "v5\n" {
		t.Fatalf("snapshot s4 holds %q", got)
	}
	checkSnaps()
}

// requireSameTreeExcept compares a restored head with the fixture, but for
// the file the test rewrote.
func requireSameTreeExcept(t *testing.T, s *suite, root string) {
	t.Helper()
	a, b := readTree(t, s.fixture, s.caps), readTree(t, root, s.caps)
	delete(a, "etc/hostname")
	delete(b, "etc/hostname")
	delete(a, "etc")
	delete(b, "etc")
	if d := diffTrees(a, b); len(d) > 0 {
		t.Fatalf("restored tree differs: %v", d)
	}
}

func testDeleteInAnyOrder(t *testing.T, s *suite) {
	// Each order deletes the same family: an image, two clones of it, a
	// snapshot of one clone and a clone of that snapshot.
	orders := [][]string{
		{"img", "a", "a@s", "c", "b"},
		{"a", "a@s", "img", "b", "c"},
		{"c", "b", "a@s", "a", "img"},
		{"a@s", "img", "c", "a", "b"},
	}
	for i, order := range orders {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s.image(t, "img")
			s.clone(t, storage.Ref{Volume: "img"}, "a")
			b := s.clone(t, storage.Ref{Volume: "img"}, "b")
			write(t, b, "etc/hostname", "b\n")
			s.snapshot(t, storage.Ref{Volume: "a", Snapshot: "s"})
			c := s.clone(t, storage.Ref{Volume: "a", Snapshot: "s"}, "c")
			write(t, c, "etc/hostname", "c\n")
			alive := map[string]bool{"img": true, "a": true, "b": true, "a@s": true, "c": true}
			for _, name := range order {
				var err error
				if name == "a@s" {
					err = s.d.DeleteSnapshot(s.ctx, storage.Ref{Volume: "a", Snapshot: "s"})
				} else {
					err = s.d.DeleteVolume(s.ctx, name)
				}
				if err != nil {
					t.Fatalf("delete %s (order %v): %v", name, order, err)
				}
				delete(alive, name)
				s.checkList(t, alive)
				// Everything still alive keeps working.
				for _, v := range []string{"a", "b", "c"} {
					if alive[v] {
						p := s.path(t, v)
						readFile(t, filepath.Join(p, "usr/bin/big"))
						write(t, p, "touched", name)
					}
				}
				if alive["a@s"] {
					s.readSnap(t, storage.Ref{Volume: "a", Snapshot: "s"}, "etc/hostname")
				}
				if alive["c"] && readFile(t, filepath.Join(s.path(t, "c"), "etc/hostname")) != "c\n" {
					t.Fatal("clone c lost its content")
				}
			}
		})
	}
}

func testUsage(t *testing.T, s *suite) {
	s.image(t, "img")
	root := s.clone(t, storage.Ref{Volume: "img"}, "inst")
	before, err := s.d.Usage(s.ctx, storage.Ref{Volume: "inst"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("silo usage "), 1<<20) // 11 MiB, barely compressible at 4k
	for i := range data {
		data[i] ^= byte(i * 131)
	}
	if err := os.WriteFile(filepath.Join(root, "payload"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	syncFS(t, root)
	// ZFS accounts space when a transaction group commits (every 30 s on
	// zfs-fuse); taking a snapshot commits one at once.
	s.snapshot(t, storage.Ref{Volume: "inst", Snapshot: "s"})
	after, err := s.d.Usage(s.ctx, storage.Ref{Volume: "inst"})
	if err != nil {
		t.Fatal(err)
	}
	if after-before < int64(len(data))/2 {
		t.Fatalf("usage grew by %d bytes after writing %d", after-before, len(data))
	}
	if _, err := s.d.Usage(s.ctx, storage.Ref{Volume: "inst", Snapshot: "s"}); err != nil {
		t.Fatalf("usage of a snapshot: %v", err)
	}
	if _, err := s.d.Usage(s.ctx, storage.Ref{Volume: "nope"}); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("usage of a missing volume: %v", err)
	}
}

func syncFS(t *testing.T, root string) {
	f, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_ = f.Sync()
	_ = unix.Syncfs(int(f.Fd()))
}

func testSendReceive(t *testing.T, s *suite) {
	s.image(t, "img")
	src := s.clone(t, storage.Ref{Volume: "img"}, "src")
	s1 := storage.Ref{Volume: "src", Snapshot: "s1"}
	s.snapshot(t, s1)
	// Change a bit of everything between s1 and s2.
	write(t, src, "etc/hostname", "changed\n")
	write(t, src, "etc/new", "new\n")
	mustDo(t, os.Remove(filepath.Join(src, "usr/bin/big")))
	mustDo(t, os.RemoveAll(filepath.Join(src, "etc/conf.d")))
	mustDo(t, os.Chmod(filepath.Join(src, "var/empty"), 0o750))
	mustDo(t, os.Link(filepath.Join(src, "etc/new"), filepath.Join(src, "var/new-link")))
	mustDo(t, os.Mkdir(filepath.Join(src, "bin2"), 0o755))
	s2 := storage.Ref{Volume: "src", Snapshot: "s2"}
	s.snapshot(t, s2)
	write(t, src, "etc/hostname", "head\n")
	mustDo(t, os.Remove(filepath.Join(src, "bin")))
	write(t, src, "bin", "now a file\n")

	dst := s.pool(t)
	recv := func(ref storage.Ref, parent string, from storage.Ref, fromParent string) {
		t.Helper()
		var buf bytes.Buffer
		if err := s.d.Send(s.ctx, from, fromParent, &buf); err != nil {
			t.Fatalf("send %s (parent %q): %v", from, fromParent, err)
		}
		if err := dst.Receive(s.ctx, ref, parent, &buf); err != nil {
			t.Fatalf("receive %s (parent %q): %v", ref, parent, err)
		}
	}
	t.Cleanup(func() {
		for _, r := range []storage.Ref{{Volume: "copy", Snapshot: "s1"}, {Volume: "copy", Snapshot: "s2"}, {Volume: "copy"}} {
			var err error
			if r.Snapshot != "" {
				err = dst.DeleteSnapshot(context.Background(), r)
			} else {
				err = dst.DeleteVolume(context.Background(), r.Volume)
			}
			if err != nil {
				t.Errorf("delete %s: %v", r, err)
			}
		}
	})
	recv(storage.Ref{Volume: "copy", Snapshot: "s1"}, "", s1, "")
	recv(storage.Ref{Volume: "copy", Snapshot: "s2"}, "s1", s2, "s1")
	compareSnap(t, s, dst, s1, storage.Ref{Volume: "copy", Snapshot: "s1"})
	compareSnap(t, s, dst, s2, storage.Ref{Volume: "copy", Snapshot: "s2"})
	// The head, incremental against s2, with no snapshot of its own.
	recv(storage.Ref{Volume: "copy"}, "s2", storage.Ref{Volume: "src"}, "s2")
	head, err := dst.VolumePath(s.ctx, "copy")
	if err != nil {
		t.Fatal(err)
	}
	requireSameTree(t, "received head", src, head, s.caps)
}

func compareSnap(t *testing.T, s *suite, dst storage.Driver, a, b storage.Ref) {
	t.Helper()
	ra, relA, err := s.d.OpenSnapshot(s.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer relA()
	rb, relB, err := dst.OpenSnapshot(s.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer relB()
	requireSameTree(t, fmt.Sprintf("received %s", b), ra, rb, s.caps)
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testErrors(t *testing.T, s *suite) {
	s.image(t, "img")
	s.clone(t, storage.Ref{Volume: "img"}, "inst")
	cases := []struct {
		what string
		err  error
		kind error
	}{
		{"clone of a missing volume", s.d.CloneVolume(s.ctx, storage.Ref{Volume: "nope"}, "x"), errkind.NotFound},
		{"clone of a missing snapshot", s.d.CloneVolume(s.ctx, storage.Ref{Volume: "inst", Snapshot: "nope"}, "x"), errkind.NotFound},
		{"clone onto a taken name", s.d.CloneVolume(s.ctx, storage.Ref{Volume: "img"}, "inst"), errkind.AlreadyExists},
		{"snapshot of a missing volume", s.d.CreateSnapshot(s.ctx, storage.Ref{Volume: "nope", Snapshot: "s"}), errkind.NotFound},
		{"delete of a missing volume", s.d.DeleteVolume(s.ctx, "nope"), errkind.NotFound},
		{"delete of a missing snapshot", s.d.DeleteSnapshot(s.ctx, storage.Ref{Volume: "inst", Snapshot: "nope"}), errkind.NotFound},
		{"a volume ID with a slash", s.d.CloneVolume(s.ctx, storage.Ref{Volume: "img"}, "../escape"), errkind.Invalid},
		{"a snapshot ID with an @", s.d.CreateSnapshot(s.ctx, storage.Ref{Volume: "inst", Snapshot: "a@b"}), errkind.Invalid},
	}
	_, err := s.d.CreateVolume(s.ctx, "inst")
	cases = append(cases, struct {
		what string
		err  error
		kind error
	}{"create onto a taken name", err, errkind.AlreadyExists})
	s.snapshot(t, storage.Ref{Volume: "inst", Snapshot: "s"})
	cases = append(cases, struct {
		what string
		err  error
		kind error
	}{"a snapshot name taken", s.d.CreateSnapshot(s.ctx, storage.Ref{Volume: "inst", Snapshot: "s"}), errkind.AlreadyExists})
	for _, c := range cases {
		if !errors.Is(c.err, c.kind) {
			t.Errorf("%s: got %v, want an error of kind %v", c.what, c.err, c.kind)
		}
	}
	if exists(filepath.Join(filepath.Dir(s.path(t, "inst")), "..", "escape")) {
		t.Fatal("an invalid ID made something on disk")
	}
}

func testFailureLeavesNothing(t *testing.T, s *suite) {
	// A fill that fails half-way leaves no volume.
	boom := errors.New("boom")
	err := storage.CreateImageVolume(s.ctx, s.d, "img", func(root string) error {
		write(t, root, "half", "written")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed fill: %v", err)
	}
	if _, err := s.d.VolumePath(s.ctx, "img"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("a failed image is still there: %v", err)
	}

	// A stream cut half-way is refused and leaves no volume.
	s.image(t, "img")
	s.clone(t, storage.Ref{Volume: "img"}, "src")
	var buf bytes.Buffer
	if err := s.d.Send(s.ctx, storage.Ref{Volume: "src"}, "", &buf); err != nil {
		t.Fatal(err)
	}
	dst := s.pool(t)
	cut := io.LimitReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()/2))
	if err := dst.Receive(s.ctx, storage.Ref{Volume: "copy", Snapshot: "s"}, "", cut); err == nil {
		t.Fatal("a truncated stream was received")
	}
	if _, err := dst.VolumePath(s.ctx, "copy"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("a failed receive left a volume: %v", err)
	}
	garbage := bytes.Repeat([]byte("not a stream "), 4096)
	if err := dst.Receive(s.ctx, storage.Ref{Volume: "copy"}, "", bytes.NewReader(garbage)); err == nil {
		t.Fatal("garbage was received")
	}

	// A clone interrupted by cancellation leaves no volume.
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	if err := s.d.CloneVolume(ctx, storage.Ref{Volume: "src"}, "cancelled"); err == nil {
		// Drivers whose clone is one atomic step may finish it; it must then be whole.
		s.cleanup(t, storage.Ref{Volume: "cancelled"})
	} else if _, err := s.d.VolumePath(s.ctx, "cancelled"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("a cancelled clone left a volume: %v", err)
	}
}

// checkList checks that List names exactly the volumes and snapshots in
// alive, written as "vol" and "vol@snap".
func (s *suite) checkList(t *testing.T, alive map[string]bool) {
	t.Helper()
	refs, err := s.d.List(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range refs {
		got[r.String()] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(alive) {
		t.Fatalf("List gives %v, want %v", got, alive)
	}
}

// Many clones made, written, read and deleted at once, as concurrent silo
// commands do, all work and every clone stays readable. (On zfs-fuse, two
// concurrent mounts once left every mount of the daemon hanging.)
func testConcurrentClones(t *testing.T, s *suite) {
	s.image(t, "img")
	const rounds, n = 6, 25
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.cloneAndRead(fmt.Sprintf("c%d-%d", round, i)) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d of %d concurrent clones: %v", round, n, err)
		}
		for i := range n {
			wg.Go(func() { errs[i] = s.d.DeleteVolume(s.ctx, fmt.Sprintf("c%d-%d", round, i)) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d of %d concurrent deletes: %v", round, n, err)
		}
	}
}

// cloneAndRead clones the image to vol, writes its hostname and reads it
// back. A filesystem that stops serving hangs instead of failing: after a
// minute, the test panics, since its cleanup would hang on it too.
func (s *suite) cloneAndRead(vol string) error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			if err := s.d.CloneVolume(s.ctx, storage.Ref{Volume: "img"}, vol); err != nil {
				return err
			}
			root, err := s.d.VolumePath(s.ctx, vol)
			if err != nil {
				return err
			}
			p := filepath.Join(root, "etc/hostname")
			if err := os.WriteFile(p, []byte(vol), 0o644); err != nil {
				return err
			}
			if got, err := os.ReadFile(p); err != nil || string(got) != vol {
				return fmt.Errorf("%s reads back %q, %v", p, got, err)
			}
			return nil
		}()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		panic(fmt.Sprintf("clone %s: the filesystem gave no answer within a minute", vol))
	}
}
