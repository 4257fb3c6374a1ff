package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
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

// RefreshVolume brings custom volume dstName on dstPool, an earlier copy
// of name on pool that no running instance attaches, up to date as
// Refresh does an instance: the snapshots it lacks are added, its own
// kept, and its head becomes the source's, moving only what changed.
func (e *Engine) RefreshVolume(ctx context.Context, pool, name, dstPool, dstName string, force bool) (*RefreshResult, error) {
	src, dst := volumeTarget(pool, name), volumeTarget(dstPool, dstName)
	if src == dst {
		return nil, errkind.Wrap(errkind.Invalid, "refresh volume %s from itself", dst)
	}
	// The locks in the order of the names, as Refresh takes them.
	for _, v := range slices.SortedFunc(slices.Values([][2]string{{pool, name}, {dstPool, dstName}}), func(a, b [2]string) int {
		return strings.Compare(volumeTarget(a[0], a[1]), volumeTarget(b[0], b[1]))
	}) {
		lock, err := e.volumeLock(v[0], v[1])
		if err != nil {
			return nil, err
		}
		defer lock.Close()
	}
	// The target's instances stay stopped: none mounts the head replaced.
	users, unlockUsers, err := e.lockUsers(dstPool, dstName)
	if err != nil {
		return nil, err
	}
	defer unlockUsers()
	var from, to *store.CustomVolume
	var running []string
	err = e.store.View(func(tx *store.Tx) (err error) {
		if from, err = tx.CustomVolume(pool, name); err != nil {
			return err
		}
		if to, err = tx.CustomVolume(dstPool, dstName); err != nil {
			return err
		}
		running, err = runningUsers(tx, pool, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	srcD, _, err := e.driver(ctx, pool)
	if err != nil {
		return nil, err
	}
	head, release := storage.Ref{Volume: from.Volume}, func() {}
	if len(running) > 0 {
		// Instances write to it: read it from a snapshot taken for the purpose.
		if head, release, err = e.freeze(ctx, srcD, pool, from.Volume, src); err != nil {
			return nil, err
		}
	}
	defer release()
	return e.refresh(ctx, &refreshOp{kind: "volume-refresh", target: dst, prefix: "v-", from: volumeLineage(from), to: volumeLineage(to), head: head, force: force,
		prepare: func(tx *store.Tx) error { return e.replaceable(tx, dstPool, dstName, users, "refresh") },
		adopt: func(ctx context.Context, d storage.Volumes, vol string, _ *store.Shift) error {
			// The new head takes the target's cap, as an import's does.
			return setQuota(ctx, d, volumeWhat(to), dstPool, vol, volumeSize(to.Config), false)
		},
		load: func(tx *store.Tx) (*lineage, error) {
			v, err := tx.CustomVolume(dstPool, dstName)
			if err != nil {
				return nil, err
			}
			return volumeLineage(v), nil
		},
		save: func(tx *store.Tx, l *lineage) error {
			v, err := tx.CustomVolume(dstPool, dstName)
			if err != nil {
				return err
			}
			v.Volume, v.Retired, v.Snapshots = l.head, l.retired, l.snaps
			if err := tx.PutCustomVolume(v); err != nil {
				return err
			}
			return volumeEvent(tx, api.ActionVolumeUpdated, dstPool, dstName, "", nil)
		}})
}

// volumeLineage is what a refresh reads and replaces of custom volume v,
// whose files are never shifted on disk.
func volumeLineage(v *store.CustomVolume) *lineage {
	return &lineage{what: volumeWhat(v), pool: v.Pool, head: v.Volume, retired: v.Retired, snaps: v.Snapshots}
}
