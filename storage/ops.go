package storage

import (
	"context"
	"fmt"

	"github.com/silo-dev/silo/internal/revert"
)

// CreateImageVolume makes the image base vol: an empty volume that fill
// populates through its root path, sealed read-only. On failure nothing is left.
func CreateImageVolume(ctx context.Context, d Volumes, vol string, fill func(root string) error) error {
	r := revert.New()
	defer r.Fail()
	root, err := d.CreateVolume(ctx, vol)
	if err != nil {
		return fmt.Errorf("create image volume %s: %w", vol, err)
	}
	r.Add(func() { _ = d.DeleteVolume(context.WithoutCancel(ctx), vol) })
	if err := fill(root); err != nil {
		return fmt.Errorf("fill image volume %s: %w", vol, err)
	}
	if err := d.SealVolume(ctx, vol); err != nil {
		return fmt.Errorf("seal image volume %s: %w", vol, err)
	}
	r.Success()
	return nil
}

// Restore brings a volume back to the state of snap, which may be a snapshot
// of that volume or of an earlier head of it. The restored state becomes the
// new volume newVol and the old head is deleted; every snapshot, older or
// newer than snap, stays where it is and usable. The caller records that the
// instance now lives in newVol.
func Restore(ctx context.Context, d Volumes, vol string, snap Ref, newVol string) error {
	if err := CheckRef(snap, true); err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	if err := d.CloneVolume(ctx, snap, newVol); err != nil {
		return fmt.Errorf("restore %s to %s: %w", vol, snap, err)
	}
	r.Add(func() { _ = d.DeleteVolume(context.WithoutCancel(ctx), newVol) })
	if err := d.DeleteVolume(ctx, vol); err != nil {
		return fmt.Errorf("restore %s to %s: retire old head: %w", vol, snap, err)
	}
	r.Success()
	return nil
}
