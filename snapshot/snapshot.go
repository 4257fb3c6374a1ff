// Package snapshot is the snapshot model above the storage drivers: which
// volume an instance runs on and which volumes its snapshots live in, what
// a restore changes, when a head that a restore replaced may go, how an
// optimized backup chains its streams, and which new volume each stream
// lands in on import. It is plain Go over plain data: it needs no store,
// no driver and no root; the engine records and carries out what it decides.
package snapshot

import (
	"slices"

	"github.com/silo-dev/silo/errkind"
)

// Snapshot is a point in time of an instance. It lives in Volume, the
// instance's head when it was taken, which a restore may since have retired.
type Snapshot struct {
	Name   string // as people call it
	ID     string // its name on disk, within Volume
	Volume string
}

// Tree is the volumes of one instance.
type Tree struct {
	Head string // the volume the instance runs on
	// Retired lists earlier heads that restores replaced and that are not
	// collected yet, oldest first.
	Retired   []string
	Snapshots []Snapshot // oldest first
}

// Snapshot returns the snapshot called name.
func (t Tree) Snapshot(name string) (Snapshot, bool) {
	i := slices.IndexFunc(t.Snapshots, func(s Snapshot) bool { return s.Name == name })
	if i < 0 {
		return Snapshot{}, false
	}
	return t.Snapshots[i], true
}

// SnapshotsIn counts the snapshots that live in volume vol.
func (t Tree) SnapshotsIn(vol string) int {
	n := 0
	for _, s := range t.Snapshots {
		if s.Volume == vol {
			n++
		}
	}
	return n
}

// uses reports whether vol is one of t's volumes.
func (t Tree) uses(vol string) bool {
	return vol == t.Head || slices.Contains(t.Retired, vol) || t.SnapshotsIn(vol) > 0
}

// clone returns a copy of t that shares no slice with it.
func (t Tree) clone() Tree {
	t.Retired = slices.Clone(t.Retired)
	t.Snapshots = slices.Clone(t.Snapshots)
	return t
}

// Restore returns t restored to snapshot name, and that snapshot: a clone
// of it, newHead, becomes the head, and the old head is retired. Nothing is
// deleted, so a restore is one clone: every snapshot, older or newer, stays,
// and the old head goes when Collect says it may.
func Restore(t Tree, name, newHead string) (Tree, Snapshot, error) {
	s, ok := t.Snapshot(name)
	if !ok {
		return t, s, errkind.Wrap(errkind.NotFound, "snapshot %q not found", name)
	}
	if newHead == "" || t.uses(newHead) {
		return t, s, errkind.Wrap(errkind.Invalid, "restore into volume %q, which the instance already uses", newHead)
	}
	t = t.clone()
	t.Retired = append(t.Retired, t.Head)
	t.Head = newHead
	return t, s, nil
}

// Collect returns t without the retired heads that may go now, and those
// heads. A retired head serves only the snapshots that live in it; where
// a driver's snapshots need their head (holdSnapshots: ZFS, whose snapshot
// is of its dataset), a head goes with its last snapshot, elsewhere at
// once. A driver sees to clones of a head itself: it keeps what a clone
// still needs out of sight until the clone goes.
func Collect(t Tree, holdSnapshots bool) (Tree, []string) {
	t = t.clone()
	var gone []string
	kept := t.Retired[:0]
	for _, v := range t.Retired {
		if holdSnapshots && t.SnapshotsIn(v) > 0 {
			kept = append(kept, v)
		} else {
			gone = append(gone, v)
		}
	}
	t.Retired = kept
	return t, gone
}

// DeleteSnapshot returns t without snapshot name, that snapshot, and the
// retired heads that may go once it has gone (see Collect).
func DeleteSnapshot(t Tree, name string, holdSnapshots bool) (Tree, Snapshot, []string, error) {
	s, ok := t.Snapshot(name)
	if !ok {
		return t, s, nil, errkind.Wrap(errkind.NotFound, "snapshot %q not found", name)
	}
	t = t.clone()
	t.Snapshots = slices.DeleteFunc(t.Snapshots, func(k Snapshot) bool { return k.Name == name })
	t, gone := Collect(t, holdSnapshots)
	return t, s, gone, nil
}
