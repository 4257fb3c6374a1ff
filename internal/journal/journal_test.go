package journal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// fakeCleaner records what it is asked to remove, and fails while fail is set.
type fakeCleaner struct {
	removed []store.Cleanup
	fail    error
}

func (c *fakeCleaner) Cleanup(_ context.Context, cl store.Cleanup) error {
	if c.fail != nil {
		return c.fail
	}
	c.removed = append(c.removed, cl)
	return nil
}

func newJournal(t *testing.T) (*Journal, *fakeCleaner) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "silo.db"), store.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeCleaner{}
	return New(st, filepath.Join(dir, "ops"), c), c
}

func ops(t *testing.T, j *Journal) []*store.Op {
	t.Helper()
	var list []*store.Op
	if err := j.store.View(func(tx *store.Tx) (err error) { list, err = tx.Ops(); return err }); err != nil {
		t.Fatal(err)
	}
	return list
}

func locks(t *testing.T, j *Journal) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(j.dir, "*.lock"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var (
	made  = store.Cleanup{Volumes: []store.VolumeRef{{Pool: "p", Volume: "new"}}}
	stale = store.Cleanup{Volumes: []store.VolumeRef{{Pool: "p", Volume: "old"}}}
)

// begin begins an operation that reserves instance name and makes a volume.
func begin(t *testing.T, j *Journal, kind, name string) *Op {
	t.Helper()
	o, err := j.Begin(kind, name, func(tx *store.Tx, rec *store.Op) error {
		rec.Reserved = []string{store.Reservation("instance", name)}
		rec.Undo = made
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A committed operation writes its records and the end of the operation
// in one transaction, removes what it retired, and leaves nothing behind.
func TestCommitRemovesRetired(t *testing.T) {
	j, c := newJournal(t)
	o := begin(t, j, "restore", "y")
	err := o.Commit(context.Background(), func(tx *store.Tx) error {
		o.Rec.Retire = stale
		return tx.PutPool(&store.Pool{Name: "p"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.removed, []store.Cleanup{stale}) {
		t.Errorf("removed %v, want only the retired volume", c.removed)
	}
	if err := j.store.View(func(tx *store.Tx) error { _, err := tx.Pool("p"); return err }); err != nil {
		t.Errorf("the committed record is missing: %v", err)
	}
	if n := len(ops(t, j)); n != 0 {
		t.Errorf("%d operations left in the store", n)
	}
	if l := locks(t, j); len(l) != 0 {
		t.Errorf("lock files left: %v", l)
	}
}

// A failed operation removes what it made and returns its cause; when the
// removal fails too, the record stays for the next command.
func TestFailUndoes(t *testing.T) {
	j, c := newJournal(t)
	cause := errors.New("clone failed")
	if err := begin(t, j, "create", "x").Fail(context.Background(), cause); err != cause {
		t.Fatalf("Fail returned %v, want the cause", err)
	}
	if !reflect.DeepEqual(c.removed, []store.Cleanup{made}) || len(ops(t, j)) != 0 {
		t.Fatalf("removed %v with %d operations left, want the undo list and none", c.removed, len(ops(t, j)))
	}

	c.fail = errors.New("pool unavailable")
	err := begin(t, j, "create", "x").Fail(context.Background(), cause)
	if !errors.Is(err, cause) || !errors.Is(err, c.fail) {
		t.Fatalf("Fail returned %v, want both the cause and the undo's error", err)
	}
	if n := len(ops(t, j)); n != 1 {
		t.Fatalf("%d operations in the store, want the one that could not be undone", n)
	}
	c.fail = nil
	pools, err := j.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pools, []string{"p"}) || len(ops(t, j)) != 0 {
		t.Fatalf("recovery swept %v and left %d operations, want pool p and none", pools, len(ops(t, j)))
	}
}

// A name reserved by an operation in flight cannot be taken by another.
func TestReservation(t *testing.T) {
	j, _ := newJournal(t)
	o := begin(t, j, "create", "x")
	_, err := j.Begin("copy", "x", func(tx *store.Tx, rec *store.Op) error {
		rec.Reserved = []string{store.Reservation("instance", "x")}
		return nil
	})
	if !errors.Is(err, errkind.Busy) {
		t.Fatalf("second reservation: %v, want busy", err)
	}
	if l := locks(t, j); len(l) != 1 {
		t.Errorf("lock files %v, want only the first operation's", l)
	}
	if err := o.Commit(context.Background(), func(*store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	err = j.Do(context.Background(), "copy", "x", func(tx *store.Tx, rec *store.Op) error {
		rec.Reserved = []string{store.Reservation("instance", "x")}
		return nil
	})
	if err != nil {
		t.Fatalf("after the first committed: %v", err)
	}
}

// Recovery leaves alone an operation whose command still runs, and
// finishes a committed one whose removal failed.
func TestRecoverSkipsLiveAndFinishesCommitted(t *testing.T) {
	j, c := newJournal(t)
	live := begin(t, j, "create", "x")
	done := begin(t, j, "restore", "y")
	c.fail = errors.New("busy")
	if err := done.Commit(context.Background(), func(*store.Tx) error { done.Rec.Retire = stale; return nil }); err != nil {
		t.Fatalf("a commit whose removal fails must not fail: %v", err)
	}
	c.fail = nil
	pools, err := j.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 0 || !reflect.DeepEqual(c.removed, []store.Cleanup{stale}) {
		t.Fatalf("recovery swept %v and removed %v, want nothing swept and the retired volume removed", pools, c.removed)
	}
	left := ops(t, j)
	if len(left) != 1 || left[0].ID != live.Rec.ID {
		t.Fatalf("operations left %v, want the live one", left)
	}
}

// A command killed at a step leaves its record, which the next one undoes.
func TestCrashpointThenRecover(t *testing.T) {
	if dir := os.Getenv("JOURNAL_TEST_DIR"); dir != "" {
		st, err := store.Open(filepath.Join(dir, "silo.db"), store.DefaultTimeout)
		if err != nil {
			t.Fatal(err)
		}
		o, err := New(st, filepath.Join(dir, "ops"), &fakeCleaner{}).Begin("create", "x", func(_ *store.Tx, rec *store.Op) error {
			rec.Undo = made
			return nil
		})
		if err == nil {
			o.Step("cloned")
		}
		t.Fatal("still alive after the kill point")
	}
	j, c := newJournal(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashpointThenRecover$")
	cmd.Env = append(os.Environ(), "JOURNAL_TEST_DIR="+filepath.Dir(j.dir), "SILO_CRASH_AT=create/cloned")
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the command ended with %v, want killed", err)
	}
	if n := len(ops(t, j)); n != 1 {
		t.Fatalf("%d operations after the kill, want 1", n)
	}
	if _, err := j.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.removed, []store.Cleanup{made}) || len(ops(t, j)) != 0 || len(locks(t, j)) != 0 {
		t.Fatalf("removed %v, want what the killed command made, and nothing left", c.removed)
	}
}
