package engine

import (
	"context"
	"io"

	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// What the drivers' incremental streams need to carry a refresh, between
// pools of one host or between hosts.

// streamIDer is a driver whose incremental streams say which state they
// were made against.
type streamIDer interface {
	// StreamID names the point in time a snapshot holds as the driver's
	// streams know it: a stream made against a snapshot with one ID can
	// be received onto a snapshot with the same ID, on any pool.
	StreamID(ctx context.Context, snap storage.Ref) (string, error)
}

// ontoReceiver is a driver whose streams can start a new volume from a
// snapshot of another (btrfs), leaving the copy's volumes as they are
// until the refresh commits.
type ontoReceiver interface {
	// ReceiveOnto reads, as the new volume dst.Volume (and its snapshot
	// dst.Snapshot when set), a stream made against a snapshot whose
	// StreamID is that of base, a snapshot of another volume.
	ReceiveOnto(ctx context.Context, dst, base storage.Ref, r io.Reader) error
}

// forker is a driver that receives an incremental stream only into the
// volume of the snapshot it was made against, as that volume's newest
// (ZFS). A refresh receives into a new volume that took over the
// target's snapshots up to the shared one, and the target's volume keeps
// its head and its newer snapshots until the refresh commits.
type forker interface {
	// Fork makes vol a copy of snapshot base that takes over the
	// snapshots of base's volume up to base, and returns their IDs.
	Fork(ctx context.Context, base storage.Ref, vol string) ([]string, error)
	// Unfork gives from back what Fork had vol take, if it did.
	Unfork(ctx context.Context, vol, from string) error
}

// sameShift says whether a and b shift files alike.
func sameShift(a, b *store.Shift) bool {
	return a == b || a != nil && b != nil && *a == *b
}

// refreshStreamsFit says whether the driver's incremental streams can
// carry the refresh of a copy of inst that holds base (nil when none),
// whose copy of base has the stream ID baseStream (empty when unknown):
// base's own stream ID is the same, and the snapshots to send and the
// head live in base's volume, their files shifted on disk as base's.
func refreshStreamsFit(ctx context.Context, d storage.Driver, inst *store.Instance, base *store.Snapshot, snaps []store.Snapshot, baseStream string) (bool, error) {
	sd, ok := d.(streamIDer)
	if !ok || base == nil || baseStream == "" || inst.Volume != base.Volume || !sameShift(inst.Shift, base.Shift) {
		return false, nil
	}
	for _, s := range snaps {
		if s.Volume != base.Volume || !sameShift(s.Shift, base.Shift) {
			return false, nil
		}
	}
	id, err := sd.StreamID(ctx, storage.Ref{Volume: base.Volume, Snapshot: base.ID})
	return id == baseStream, err
}
