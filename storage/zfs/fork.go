package zfs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/storage"
)

// StreamID names the state snapshot snap holds as zfs's streams name it:
// by its guid, which a received snapshot keeps from the one it was sent
// from. zfs receive takes an incremental stream onto a snapshot with the
// guid the stream was made against.
func (d *driver) StreamID(ctx context.Context, snap storage.Ref) (string, error) {
	if err := storage.CheckRef(snap, true); err != nil {
		return "", err
	}
	out, err := zfs(ctx, "get", "-Hp", "-o", "value", "guid", d.name(snap))
	if err != nil {
		return "", notFound(err, snap)
	}
	return strings.TrimSpace(out), nil
}

// Fork makes vol a clone of snapshot base that takes over, by zfs promote,
// the snapshots of base's volume up to base, and returns the IDs of those
// it took, which live in vol from then on. base's volume keeps its head and
// its newer snapshots, as a clone of vol's copy of base.
//
// zfs receives an incremental stream only into the volume of the snapshot
// it was made against, as that volume's newest snapshot, and replaces the
// volume's head as it does. vol is such a volume, new: streams received
// into it leave base's volume as it was, so that a refresh cut short
// changes nothing once Unfork has given the snapshots back.
func (d *driver) Fork(ctx context.Context, base storage.Ref, vol string) ([]string, error) {
	if err := storage.CheckRef(base, true); err != nil {
		return nil, err
	}
	if err := storage.CheckID("volume", vol); err != nil {
		return nil, err
	}
	if err := d.clone(ctx, d.name(base), vol, base); err != nil {
		return nil, err
	}
	if _, err := zfs(ctx, "promote", d.dataset(vol)); err != nil {
		return nil, fmt.Errorf("fork %s: %w", base, err)
	}
	out, err := zfs(ctx, "list", "-H", "-o", "name", "-t", "snapshot", "-d", "1", d.dataset(vol))
	if err != nil {
		return nil, fmt.Errorf("fork %s: %w", base, err)
	}
	var moved []string
	for _, name := range strings.Fields(out) {
		if _, snap, ok := strings.Cut(name, "@"); ok && !strings.HasPrefix(snap, "_") {
			moved = append(moved, snap)
		}
	}
	return moved, nil
}

// Unfork gives volume from back the snapshots that Fork had vol take from
// it, if it did: from is then a clone of a snapshot of vol, and promoting
// it takes them back. vol keeps its own newer snapshots, as a clone of
// from. Nothing happens if either is gone or Fork did not get so far.
func (d *driver) Unfork(ctx context.Context, vol, from string) error {
	for _, v := range []string{vol, from} {
		if err := storage.CheckID("volume", v); err != nil {
			return err
		}
	}
	out, err := zfs(ctx, "get", "-H", "-o", "value", "origin", d.dataset(from))
	if errors.Is(err, errkind.NotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unfork %s: %w", from, err)
	}
	if ds, _, _ := strings.Cut(strings.TrimSpace(out), "@"); ds != d.dataset(vol) {
		return nil
	}
	if _, err := zfs(ctx, "promote", d.dataset(from)); err != nil {
		return fmt.Errorf("unfork %s: %w", from, err)
	}
	return nil
}
