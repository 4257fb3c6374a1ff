package engine

import (
	"errors"
	"slices"
	"testing"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// A refresh starts from the target's copy of the newest snapshot both
// share, by UUID whatever the names; it adds the others, and refuses a
// name both have with other UUIDs unless forced.
func TestPlanRefresh(t *testing.T) {
	snap := func(name, uuid, vol, id string) store.Snapshot {
		return store.Snapshot{Name: name, UUID: uuid, Volume: vol, ID: id}
	}
	from := &store.Instance{Name: "a", Volume: "va2", Snapshots: []store.Snapshot{
		snap("s0", "u0", "va1", "a0"), snap("s1", "u1", "va1", "a1"), snap("s2", "u2", "va2", "a2"), snap("old", "", "va2", "a3"),
	}}
	to := &store.Instance{Name: "b", Volume: "vb", Snapshots: []store.Snapshot{
		snap("s0", "u0", "vb", "b0"), snap("s1", "u1", "vb", "b1"), snap("mine", "u9", "vb", "b9"),
	}}
	p, err := planRefresh(instanceLineage(from), instanceLineage(to), false)
	if err != nil {
		t.Fatal(err)
	}
	if p.base != (storage.Ref{Volume: "vb", Snapshot: "b1"}) || p.srcBase != (storage.Ref{Volume: "va1", Snapshot: "a1"}) {
		t.Fatalf("base %v, on the source %v", p.base, p.srcBase)
	}
	var missing []string
	for _, s := range p.missing {
		missing = append(missing, s.Name)
	}
	if !slices.Equal(missing, []string{"s2", "old"}) || len(p.diverged) != 0 {
		t.Fatalf("missing %v, diverged %v", missing, p.diverged)
	}

	// The same names, other points in time; a snapshot without a UUID
	// (from before they had one) shares nothing.
	to.Snapshots = []store.Snapshot{snap("s0", "u0", "vb", "b0"), snap("s1", "x1", "vb", "b1"), snap("old", "", "vb", "b3")}
	if _, err := planRefresh(instanceLineage(from), instanceLineage(to), false); !errors.Is(err, errkind.Invalid) {
		t.Fatalf("a diverged target: %v", err)
	}
	p, err = planRefresh(instanceLineage(from), instanceLineage(to), true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.diverged, []string{"s1", "old"}) || len(p.missing) != 3 || p.base.Snapshot != "b0" {
		t.Fatalf("forced: diverged %v, %d missing, base %v", p.diverged, len(p.missing), p.base)
	}

	// Nothing shared: the target's head is the base.
	to.Snapshots = nil
	if p, err = planRefresh(instanceLineage(from), instanceLineage(to), false); err != nil || p.base != (storage.Ref{Volume: "vb"}) || p.srcBase != (storage.Ref{}) {
		t.Fatalf("nothing shared: %+v, %v", p, err)
	}
}
