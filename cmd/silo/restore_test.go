package main

import (
	"slices"
	"testing"

	"github.com/silo-dev/silo/internal/store"
)

// Restoring again and again is one clone each time, on every driver: the
// heads a restore replaces stay, recorded as retired and unmounted, and
// go later: at the next start those that no snapshot needs, and a head
// that snapshots live in (on ZFS) with the last of them. A restore that
// deleted the head it replaces would fail here.
func TestRepeatedRestore(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := bootEnv(t, driver)
			e.ok(append([]string{"create", "bb", "a"}, e.poolArgs()...)...)
			e.ok("snapshot", "create", "a", "s")
			first := record(t, e, "a").Volume
			mounts := e.mounts()
			var heads []string
			for range 3 {
				heads = append(heads, record(t, e, "a").Volume)
				e.ok("snapshot", "restore", "a", "s")
				if got := e.mounts(); got != mounts {
					t.Fatalf("%d mounts below the state directory after a restore, %d before", got, mounts)
				}
			}
			if got := record(t, e, "a").Retired; !slices.Equal(got, heads) {
				t.Fatalf("retired heads %v, want %v: a restore deleted the head it replaced", got, heads)
			}
			e.consistent() // the retired heads are on the pool, as recorded

			e.ok("start", "a")
			e.ok("stop", "a", "--force")
			var want []string
			if driver == "zfs" {
				want = []string{first} // snapshot s lives in it
			}
			if got := record(t, e, "a").Retired; !slices.Equal(got, want) {
				t.Fatalf("after a start, retired heads %v, want %v", got, want)
			}
			e.consistent()

			e.ok("snapshot", "delete", "a", "s")
			if got := record(t, e, "a").Retired; len(got) != 0 {
				t.Fatalf("after the last snapshot went, retired heads %v", got)
			}
			e.consistent()
		})
	}
}

// record reads the store's record of instance name.
func record(t *testing.T, e *env, name string) *store.Instance {
	t.Helper()
	var inst *store.Instance
	err := openStore(t, e).View(func(tx *store.Tx) error {
		var err error
		inst, err = tx.Instance(name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}
