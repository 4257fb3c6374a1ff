package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/internal/store"
)

// CopyVolume makes custom volume dstName on dstPool hold custom volume
// name on pool, with its snapshots (which keep their names, creation
// times and UUIDs) unless volumeOnly, or its snapshot snap alone. It is
// the volume's export piped into an import, as an instance's copy with
// snapshots is: the driver's streams, each incremental against the
// snapshot before, between pools of one driver, and differences of the
// trees across drivers or from a snapshot alone.
func (e *Engine) CopyVolume(ctx context.Context, pool, name, snap, dstPool, dstName string, volumeOnly bool) (*store.CustomVolume, error) {
	_, from, err := e.driver(ctx, pool)
	if err != nil {
		return nil, err
	}
	_, to, err := e.driver(ctx, dstPool)
	if err != nil {
		return nil, err
	}
	// A snapshot alone goes as a tree: a driver stream sends a head.
	opts := ExportOptions{Compression: compression.None, Optimized: from.Driver == to.Driver && snap == "", InstanceOnly: volumeOnly}
	var v *store.CustomVolume
	err = iopipe.Run(func(w io.Writer) error { return e.exportVolume(ctx, pool, name, snap, w, opts) },
		func(r io.Reader) (err error) {
			v, err = e.ImportVolume(ctx, r, dstPool, dstName)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("copy volume %s to %s: %w", name, dstName, err)
	}
	return v, nil
}
