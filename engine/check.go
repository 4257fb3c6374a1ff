package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// Check compares the records with what the pools and the image store hold,
// and returns one line for each volume, image file or backup file without
// a record, record without its volume or backup file, and operation left
// in flight. None means the two agree.
func (e *Engine) Check(ctx context.Context) ([]string, error) {
	want := map[string]map[storage.Ref]string{} // pool -> ref -> what records it
	files := map[string]bool{}                  // image files with a record
	backups := map[string]string{}              // backup files -> what records each
	var pools []*store.Pool
	var problems []string
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		if pools, err = tx.Pools(); err != nil {
			return err
		}
		for _, p := range pools {
			want[p.Name] = map[storage.Ref]string{}
		}
		add := func(pool string, ref storage.Ref, what string) {
			if want[pool] == nil {
				problems = append(problems, fmt.Sprintf("%s is on pool %s, which has no record", what, pool))
				return
			}
			want[pool][ref] = what
		}
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		for _, img := range imgs {
			files[img.File] = true
			if img.Rootfs != "" {
				files[img.Rootfs] = true
			}
			for pool, vol := range img.Bases {
				add(pool, storage.Ref{Volume: vol}, fmt.Sprintf("image %.12s", img.Fingerprint))
			}
			for pool, shifted := range img.Shifted {
				if img.Bases[pool] == "" {
					problems = append(problems, fmt.Sprintf("image %.12s has shifted bases on pool %s but no base", img.Fingerprint, pool))
				}
				for key, vol := range shifted {
					add(pool, storage.Ref{Volume: vol}, fmt.Sprintf("image %.12s shifted for %s", img.Fingerprint, key))
				}
			}
		}
		insts, err := tx.Instances()
		if err != nil {
			return err
		}
		for _, i := range insts {
			add(i.Pool, storage.Ref{Volume: i.Volume}, "instance "+i.Name)
			for _, v := range i.Retired {
				add(i.Pool, storage.Ref{Volume: v}, "retired head of instance "+i.Name)
			}
			for _, s := range i.Snapshots {
				add(i.Pool, storage.Ref{Volume: s.Volume, Snapshot: s.ID}, "snapshot "+i.Name+"/"+s.Name)
			}
			for _, b := range i.Backups {
				backups[e.backupPath(b.ID)] = "backup " + i.Name + "/" + b.Name
			}
		}
		vols, err := tx.CustomVolumes("")
		if err != nil {
			return err
		}
		for _, v := range vols {
			what := "volume " + v.Name
			for _, ref := range treeRefs(v.Pool, v.Volume, v.Retired, v.Snapshots) {
				add(ref.Pool, storage.Ref{Volume: ref.Volume, Snapshot: ref.Snapshot}, what)
			}
		}
		problems = append(problems, overlappingRanges(insts)...)
		ops, err := tx.Ops()
		for _, op := range ops {
			problems = append(problems, fmt.Sprintf("operation %s of %s is still recorded", op.Kind, op.Target))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{"images", "backups"} {
		entries, err := os.ReadDir(e.path(dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, f := range entries {
			p := e.path(dir, f.Name())
			if _, ok := backups[p]; ok {
				delete(backups, p)
			} else if !files[p] {
				problems = append(problems, fmt.Sprintf("file %s has no record", p))
			}
		}
	}
	for p, what := range backups {
		problems = append(problems, fmt.Sprintf("%s has no file %s", what, p))
	}
	for _, p := range pools {
		d, _, err := e.driver(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		refs, err := d.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list pool %s: %w", p.Name, err)
		}
		for _, ref := range refs {
			if _, ok := want[p.Name][ref]; ok {
				delete(want[p.Name], ref)
			} else {
				problems = append(problems, fmt.Sprintf("pool %s holds %s, which no record names", p.Name, ref))
			}
		}
		for ref, what := range want[p.Name] {
			problems = append(problems, fmt.Sprintf("%s has no volume %s on pool %s", what, ref, p.Name))
		}
	}
	sort.Strings(problems)
	return problems, nil
}
