// The background pass: scheduled snapshots and their expiry, for
// instances and custom volumes, and the expiry of instances' backups.
// `silo serve` runs it each minute; without a server, cron or a systemd
// timer runs `silo housekeep`.

package engine

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/snapshot"
)

// HousekeepReport is what a pass did, each entry naming a snapshot as
// OWNER/SNAP, OWNER an instance or a custom volume as POOL/VOLUME.
type HousekeepReport struct {
	Taken   []string `json:"taken"`
	Expired []string `json:"expired"`
	// ExpiredBackups are the instances' backups deleted as they
	// expired, as NAME/BACKUP.
	ExpiredBackups []string `json:"expired_backups"`
	// Skipped lists the stopped instances whose scheduled snapshot was
	// not taken (snapshots.schedule.stopped is false).
	Skipped []string `json:"skipped"`
	// Failed lists what went wrong, one line each; the pass goes on.
	Failed []string `json:"failed"`
}

// owner is an instance or a custom volume, for the pass: what it needs of
// either, and the engine's operations on it.
type owner struct {
	what    string // in the report: NAME or POOL/VOLUME
	cfg     map[string]string
	last    time.Time // of the last scheduled snapshot
	snaps   []store.Snapshot
	backups []store.Backup // an instance's
	stopped bool           // an instance that does not run, and may not be snapshotted so
	take    func(SnapshotOptions) (*store.Snapshot, error)
	drop    func(snap string) error
	// dropBackup deletes an instance's backup.
	dropBackup func(backup string) error
	skip       func(now time.Time) error // records a scheduled time as passed
}

// Housekeep runs the background pass at time now: it deletes the
// snapshots and backups that have expired, and takes the snapshots that
// the schedules name since each owner's last scheduled snapshot (see
// snapshot.Schedule.Due), once however many times the schedule named
// since. The time of that
// snapshot is recorded with it, in the same commit, so that a second
// pass in the same minute takes none, and a snapshot that a crash undid
// is taken by the next pass; a pass that came late (the host was down,
// the timer missed a minute) still takes one. Passes do not overlap:
// the second waits for the first. A failure on one owner is logged and
// reported, and the others go on; the error says how many failed. When
// ctx ends, the pass ends after the snapshot under way.
func (e *Engine) Housekeep(ctx context.Context, now time.Time) (*HousekeepReport, error) {
	lock, err := fsutil.LockFile(e.path("locks", "housekeep.lock"), syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	owners, err := e.owners(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	r := &HousekeepReport{Taken: []string{}, Expired: []string{}, ExpiredBackups: []string{}, Skipped: []string{}, Failed: []string{}}
	for _, o := range owners {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if err := o.keep(now, r); err != nil {
			slog.Error("background pass", "owner", o.what, "error", err)
			r.Failed = append(r.Failed, fmt.Sprintf("%s: %v", o.what, err))
		}
	}
	if n := len(r.Failed); n > 0 {
		return r, fmt.Errorf("background pass: %d of %d failed; the first: %s", n, len(owners), r.Failed[0])
	}
	return r, nil
}

// keep deletes o's expired snapshots and backups, then takes its
// scheduled snapshot if due.
func (o *owner) keep(now time.Time, r *HousekeepReport) error {
	dated := make([]snapshot.Dated, len(o.snaps))
	for i, s := range o.snaps {
		dated[i] = snapshot.Dated{Name: s.Name, Expires: s.Expires}
	}
	if err := o.expire("snapshot", dated, now, o.drop, &r.Expired); err != nil {
		return err
	}
	dated = make([]snapshot.Dated, len(o.backups))
	for i, b := range o.backups {
		dated[i] = snapshot.Dated{Name: b.Name, Expires: b.Expires}
	}
	if err := o.expire("backup", dated, now, o.dropBackup, &r.ExpiredBackups); err != nil {
		return err
	}
	sched, err := snapshot.ParseSchedule(o.cfg[KeySnapSchedule])
	if err != nil || !sched.Due(o.last, now) {
		return err
	}
	if o.stopped {
		r.Skipped = append(r.Skipped, o.what)
		return o.skip(now)
	}
	s, err := o.take(SnapshotOptions{At: now, scheduled: true})
	if err != nil {
		return fmt.Errorf("scheduled snapshot: %w", err)
	}
	r.Taken = append(r.Taken, o.what+"/"+s.Name)
	return nil
}

// expire deletes through drop those of items (of kind, in messages)
// whose expiry has come, and adds each to done as OWNER/NAME.
func (o *owner) expire(kind string, items []snapshot.Dated, now time.Time, drop func(string) error, done *[]string) error {
	for _, name := range snapshot.Expired(items, now) {
		if err := drop(name); err != nil {
			return fmt.Errorf("delete expired %s %s: %w", kind, name, err)
		}
		*done = append(*done, o.what+"/"+name)
	}
	return nil
}

// owners lists the instances and custom volumes, with what the pass
// needs of each.
func (e *Engine) owners(ctx context.Context) ([]*owner, error) {
	var out []*owner
	var names []string
	err := e.store.View(func(tx *store.Tx) error {
		err := eachExpanded(tx, func(inst *store.Instance, cfg map[string]string) {
			out = append(out, e.instanceOwner(ctx, inst, cfg))
			names = append(names, inst.Name)
		})
		if err != nil {
			return err
		}
		vols, err := tx.CustomVolumes("")
		if err != nil {
			return err
		}
		for _, v := range vols {
			out = append(out, e.volumeOwner(ctx, &v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		run, err := e.liveRun(name)
		if err != nil {
			return nil, err
		}
		out[i].stopped = run == nil && out[i].cfg[KeySnapStopped] != "true"
	}
	return out, nil
}

func (e *Engine) instanceOwner(ctx context.Context, inst *store.Instance, cfg map[string]string) *owner {
	name := inst.Name
	return &owner{what: name, cfg: cfg, last: inst.ScheduledAt, snaps: inst.Snapshots, backups: inst.Backups,
		take:       func(o SnapshotOptions) (*store.Snapshot, error) { return e.CreateSnapshot(ctx, name, o) },
		drop:       func(snap string) error { return e.DeleteSnapshot(ctx, name, snap) },
		dropBackup: func(b string) error { return e.DeleteBackup(ctx, name, b) },
		skip: func(now time.Time) error {
			return e.store.Update(func(tx *store.Tx) error {
				inst, err := tx.Instance(name)
				if err != nil {
					return err
				}
				inst.ScheduledAt = now
				return tx.PutInstance(inst)
			})
		}}
}

// volumeOwner is custom volume v: snapshotted on schedule whether or not
// an instance that attaches it runs, as LXD's.
func (e *Engine) volumeOwner(ctx context.Context, v *store.CustomVolume) *owner {
	pool, name := v.Pool, v.Name
	return &owner{what: volumeTarget(pool, name), cfg: v.Config, last: v.ScheduledAt, snaps: v.Snapshots,
		take: func(o SnapshotOptions) (*store.Snapshot, error) { return e.CreateVolumeSnapshot(ctx, pool, name, o) },
		drop: func(snap string) error { return e.DeleteVolumeSnapshot(ctx, pool, name, snap) }}
}
