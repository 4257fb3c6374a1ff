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
