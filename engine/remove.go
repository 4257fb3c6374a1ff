package engine

import (
	"context"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
)

// remove deletes an instance that does not run, with its snapshots and
// backups.
func (e *Engine) remove(ctx context.Context, name string) error {
	defer e.refreshNetworks(ctx)
	return e.journal.Do(ctx, "delete", name, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		if err := notRunning(tx, name, "delete"); err != nil {
			return err
		}
		if err := tx.DeleteRun(name); err != nil {
			return err
		}
		rec.Retire.Files = append(append(rec.Retire.Files, e.consoleLog(name)), e.backupFiles(inst)...)
		rec.Retire.Volumes = append(rec.Retire.Volumes, treeRefs(inst.Pool, inst.Volume, inst.Retired, inst.Snapshots)...)
		if err := tx.DeleteInstance(name); err != nil {
			return err
		}
		return instanceEvent(tx, api.ActionInstanceDeleted, name, nil)
	})
}

func snapRef(inst *store.Instance, s *store.Snapshot) store.VolumeRef {
	return store.VolumeRef{Pool: inst.Pool, Volume: s.Volume, Snapshot: s.ID}
}
