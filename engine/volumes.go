// Custom volumes: volumes of their own on a pool, apart from any
// instance's root, with snapshots as instances have them.

package engine

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/units"
	"github.com/silo-dev/silo/runtime/monitor"
	"github.com/silo-dev/silo/snapshot"
	"github.com/silo-dev/silo/storage"
)

// Volume config keys.
const (
	VolumeKeySize        = "size"
	VolumeKeyDescription = "description"
)

// checkVolumeConfig checks one config key of a custom volume and its value.
func checkVolumeConfig(key, value string) error {
	switch {
	case key == VolumeKeySize:
		if _, err := units.ParseSize(value); err != nil || value == "" {
			return errkind.Wrap(errkind.Invalid, "volume config size=%q: give bytes or a number with KiB, MiB, GiB or TiB", value)
		}
	case slices.Contains(snapshotKeys, key):
		return checkSnapshotConfig(key, value)
	case key == VolumeKeyDescription, strings.HasPrefix(key, "user.") && len(key) > len("user."):
	default:
		return errkind.Wrap(errkind.Invalid, "unknown volume config key %q: use size, description, %s or user.*", key, strings.Join(snapshotKeys, ", "))
	}
	return nil
}

// volumeSize is the cap that config asks for: 0 for none.
func volumeSize(config map[string]string) int64 {
	n, _ := units.ParseSize(config[VolumeKeySize]) // checked when set
	return n
}

// volumeWhat names volume v in messages.
func volumeWhat(v *store.CustomVolume) string {
	return fmt.Sprintf("volume %s in pool %s", v.Name, v.Pool)
}

// volumeTarget names a volume in the journal.
func volumeTarget(pool, name string) string { return pool + "/" + name }

// volumeLock serializes the commands that change custom volume name on
// pool: a restore or a delete never runs beside a snapshot of it.
func (e *Engine) volumeLock(pool, name string) (*os.File, error) {
	// Both names become a path before the store is asked of them.
	if err := checkName("pool", pool); err != nil {
		return nil, err
	}
	if err := checkName("volume", name); err != nil {
		return nil, err
	}
	return fsutil.LockFile(e.path("locks", "volume-"+pool+"_"+name+".lock"), syscall.LOCK_EX)
}

// lockedVolume takes the lock of custom volume name on pool, and returns
// the volume and the pool's driver; unlock lets go.
func (e *Engine) lockedVolume(ctx context.Context, pool, name string) (*store.CustomVolume, storage.Driver, func(), error) {
	lock, err := e.volumeLock(pool, name)
	if err != nil {
		return nil, nil, nil, err
	}
	var v *store.CustomVolume
	err = e.store.View(func(tx *store.Tx) (err error) { v, err = tx.CustomVolume(pool, name); return err })
	var d storage.Driver
	if err == nil {
		d, _, err = e.driver(ctx, pool)
	}
	if err != nil {
		lock.Close()
		return nil, nil, nil, err
	}
	return v, d, func() { lock.Close() }, nil
}

// attaches says whether devs attach custom volume name on pool: a disk
// with pool= and source= naming it.
func attaches(devs store.Devices, pool, name string) bool {
	return len(volumeDisks(devs, pool, name)) > 0
}

// volumeDisks lists, in order, the names of the devices among devs that
// mount custom volume name on pool.
func volumeDisks(devs store.Devices, pool, name string) []string {
	var out []string
	for _, dev := range slices.Sorted(maps.Keys(devs)) {
		if d := devs[dev]; isDisk(d) && d["pool"] == pool && d["source"] == name {
			out = append(out, dev)
		}
	}
	return out
}

// volumeUsers lists the paths of the instances that attach custom volume
// name on pool, through their own devices or their profiles', then of
// the profiles that do.
func volumeUsers(tx *store.Tx, pool, name string) ([]string, error) {
	var users []string
	insts, err := tx.Instances()
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		x, err := expanded(tx, inst)
		if err != nil {
			return nil, err
		}
		if attaches(x.Devices, pool, name) {
			users = append(users, api.Path("instances", inst.Name))
		}
	}
	profiles, err := tx.Profiles()
	if err != nil {
		return nil, err
	}
	for _, p := range profiles {
		if attaches(p.Devices, pool, name) {
			users = append(users, api.Path("profiles", p.Name))
		}
	}
	return users, nil
}

// notAttached refuses to what a volume that anything attaches.
func notAttached(tx *store.Tx, pool, name, what string) error {
	users, err := volumeUsers(tx, pool, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errkind.Wrap(errkind.Busy, "volume %q in pool %q is attached to %s: detach it before you %s it", name, pool, strings.Join(users, ", "), what)
	}
	return nil
}

// instanceUsers lists the instances that attach custom volume name on
// pool, by their own devices or their profiles'.
func instanceUsers(tx *store.Tx, pool, name string) ([]string, error) {
	users, err := volumeUsers(tx, pool, name)
	if err != nil {
		return nil, err
	}
	var insts []string
	for _, u := range users {
		if inst, ok := strings.CutPrefix(u, api.Path("instances", "")); ok {
			insts = append(insts, inst)
		}
	}
	return insts, nil
}

// runningUsers lists the running instances that attach custom volume
// name on pool.
func runningUsers(tx *store.Tx, pool, name string) ([]string, error) {
	users, err := instanceUsers(tx, pool, name)
	if err != nil {
		return nil, err
	}
	var running []string
	for _, inst := range users {
		r, err := liveRun(tx, inst)
		if err != nil {
			return nil, err
		}
		if r != nil {
			running = append(running, inst)
		}
	}
	return running, nil
}

// lockUsers takes the locks of the instances that attach custom volume
// name on pool, which their starts hold until their runs are recorded:
// no start mounts the head that a restore or a refresh is replacing.
// It returns the instances locked; unlock lets go.
func (e *Engine) lockUsers(pool, name string) (locked []string, unlock func(), err error) {
	if err := e.store.View(func(tx *store.Tx) (err error) { locked, err = instanceUsers(tx, pool, name); return err }); err != nil {
		return nil, nil, err
	}
	unlock, err = e.lockInstances(locked)
	return locked, unlock, err
}

// replaceable refuses to replace the head of a volume that a running
// instance attaches (the instance has it mounted, and cannot be moved
// onto a new one under its feet), or that an instance not in locked
// attaches: it came since lockUsers, and may be starting.
func (e *Engine) replaceable(tx *store.Tx, pool, name string, locked []string, what string) error {
	users, err := instanceUsers(tx, pool, name)
	if err != nil {
		return err
	}
	var running []string
	for _, u := range users {
		if !slices.Contains(locked, u) {
			return errkind.Wrap(errkind.Busy, "%s volume %s: instance %s attached it meanwhile", what, name, u)
		}
		r, err := tx.Run(u)
		if err != nil {
			return err
		}
		// A run whose monitor lives may be between the two boots of a
		// reboot from inside, which mounts the disks without the lock.
		if r != nil && (live(r) || monitor.Alive(e.runDir(u))) {
			running = append(running, u)
		}
	}
	if len(running) > 0 {
		return errkind.Wrap(errkind.Busy, "volume %q in pool %q is attached to running instance(s) %s, which have it mounted: stop them before you %s it", name, pool, strings.Join(running, ", "), what)
	}
	return nil
}

// CreateVolume makes custom volume name on pool, empty, with config
// (size=, description, user.*); a size caps it through the pool's driver.
func (e *Engine) CreateVolume(ctx context.Context, pool, name string, config map[string]string) (*store.CustomVolume, error) {
	for k, v := range config {
		if err := checkVolumeConfig(k, v); err != nil {
			return nil, err
		}
	}
	d, p, err := e.newVolumePool(ctx, pool, name)
	if err != nil {
		return nil, err
	}
	pool = p.Name
	v := &store.CustomVolume{Pool: pool, Name: name, Volume: newID("v-"), Config: maps.Clone(config), Created: time.Now().UTC()}
	o, err := e.journal.Begin("volume-create", volumeTarget(pool, name), func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: v.Volume}}
		return reserveVolume(tx, rec, pool, name)
	})
	if err != nil {
		return nil, err
	}
	if _, err := d.CreateVolume(ctx, v.Volume); err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("create volume %s: %w", name, err))
	}
	if err := setQuota(ctx, d, volumeWhat(v), pool, v.Volume, volumeSize(v.Config), false); err != nil {
		return nil, o.Fail(ctx, err)
	}
	o.Step("created")
	return v, o.Commit(ctx, func(tx *store.Tx) error {
		if _, err := tx.Pool(pool); err != nil {
			return fmt.Errorf("create volume %s: the pool went meanwhile: %w", name, err)
		}
		return putNewVolume(tx, v)
	})
}

// newVolumePool checks name for a new custom volume, and returns the
// driver of pool (the default pool, made on first use, when empty).
func (e *Engine) newVolumePool(ctx context.Context, pool, name string) (storage.Driver, *store.Pool, error) {
	if err := checkName("volume", name); err != nil {
		return nil, nil, err
	}
	pool, err := e.pool(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	return e.driver(ctx, pool)
}

// reserveVolume checks that name is free on pool for a new custom volume
// and holds it.
func reserveVolume(tx *store.Tx, rec *store.Op, pool, name string) error {
	if tx.HasCustomVolume(pool, name) {
		return errkind.Wrap(errkind.AlreadyExists, "volume %q already exists in pool %q", name, pool)
	}
	rec.Reserved = append(rec.Reserved, store.Reservation("volume", pool, name))
	return nil
}

// Volumes lists the custom volumes of pool (of every pool when empty), by
// pool and name, with what each holds.
func (e *Engine) Volumes(ctx context.Context, pool string) ([]*api.StorageVolume, error) {
	var vols []store.CustomVolume
	out := []*api.StorageVolume{}
	err := e.store.View(func(tx *store.Tx) error {
		if pool != "" {
			if _, err := tx.Pool(pool); err != nil {
				return err
			}
		}
		var err error
		if vols, err = tx.CustomVolumes(pool); err != nil {
			return err
		}
		for i := range vols {
			a, err := apiVolume(tx, &vols[i])
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range vols {
		if out[i].State, err = e.volumeState(ctx, &vols[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Volume describes custom volume name on pool, with what it holds.
func (e *Engine) Volume(ctx context.Context, pool, name string) (*api.StorageVolume, error) {
	var v *store.CustomVolume
	var out *api.StorageVolume
	err := e.store.View(func(tx *store.Tx) (err error) {
		if v, err = tx.CustomVolume(pool, name); err != nil {
			return err
		}
		out, err = apiVolume(tx, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	out.State, err = e.volumeState(ctx, v)
	return out, err
}

// volumeState is what v holds, and its cap.
func (e *Engine) volumeState(ctx context.Context, v *store.CustomVolume) (*api.StorageVolumeState, error) {
	d, _, err := e.driver(ctx, v.Pool)
	if err != nil {
		return nil, err
	}
	st := &api.StorageVolumeState{}
	if st.Usage.Used, err = d.Usage(ctx, storage.Ref{Volume: v.Volume}); err != nil {
		return nil, fmt.Errorf("usage of %s: %w", volumeWhat(v), err)
	}
	if q, ok := d.(storage.Quota); ok && volumeSize(v.Config) > 0 {
		if st.Usage.Total, err = q.Quota(ctx, v.Volume); err != nil {
			return nil, fmt.Errorf("size of %s: %w", volumeWhat(v), err)
		}
	}
	return st, nil
}

// apiVolume is v as programs see it: no volume IDs.
func apiVolume(tx *store.Tx, v *store.CustomVolume) (*api.StorageVolume, error) {
	users, err := volumeUsers(tx, v.Pool, v.Name)
	if err != nil {
		return nil, err
	}
	if users == nil {
		users = []string{}
	}
	cfg := orEmpty(maps.Clone(v.Config))
	desc := cfg[VolumeKeyDescription]
	delete(cfg, VolumeKeyDescription)
	out := &api.StorageVolume{Name: v.Name, Pool: v.Pool, Type: api.VolumeTypeCustom, ContentType: api.ContentFilesystem,
		Description: desc, Config: cfg, UsedBy: users, CreatedAt: v.Created, Snapshots: apiVolumeSnapshots(v.Snapshots)}
	return out, nil
}

func apiVolumeSnapshots(snaps []store.Snapshot) []api.StorageVolumeSnapshot {
	out := []api.StorageVolumeSnapshot{}
	for _, s := range snaps {
		out = append(out, api.StorageVolumeSnapshot{Name: s.Name, CreatedAt: s.Created, ExpiresAt: s.Expires})
	}
	return out
}

// RenameVolume gives custom volume oldName on pool a new name; nothing
// on disk changes. A volume that something attaches is refused: its
// devices name it.
func (e *Engine) RenameVolume(ctx context.Context, pool, oldName, newName string) error {
	if err := checkName("volume", newName); err != nil {
		return err
	}
	lock, err := e.volumeLock(pool, oldName)
	if err != nil {
		return err
	}
	defer lock.Close()
	return e.store.Update(func(tx *store.Tx) error {
		v, err := tx.CustomVolume(pool, oldName)
		if err != nil {
			return err
		}
		if err := notAttached(tx, pool, oldName, "rename"); err != nil {
			return err
		}
		if tx.HasCustomVolume(pool, newName) {
			return errkind.Wrap(errkind.AlreadyExists, "volume %q already exists in pool %q", newName, pool)
		}
		if taken, err := tx.Reserved(store.Reservation("volume", pool, newName)); err != nil || taken {
			return errkindOr(err, errkind.Wrap(errkind.Busy, "volume %q in pool %q is being made by another silo command", newName, pool))
		}
		if err := tx.DeleteCustomVolume(pool, oldName); err != nil {
			return err
		}
		v.Name = newName
		if err := tx.PutCustomVolume(v); err != nil {
			return err
		}
		return volumeEvent(tx, api.ActionVolumeRenamed, pool, newName, "", map[string]any{"old_name": oldName})
	})
}

// DeleteVolume deletes custom volume name on pool with its snapshots,
// unless something attaches it.
func (e *Engine) DeleteVolume(ctx context.Context, pool, name string) error {
	lock, err := e.volumeLock(pool, name)
	if err != nil {
		return err
	}
	defer lock.Close()
	err = e.journal.Do(ctx, "volume-delete", volumeTarget(pool, name), func(tx *store.Tx, rec *store.Op) error {
		v, err := tx.CustomVolume(pool, name)
		if err != nil {
			return err
		}
		if err := notAttached(tx, pool, name, "delete"); err != nil {
			return err
		}
		rec.Retire.Volumes = treeRefs(pool, v.Volume, v.Retired, v.Snapshots)
		if err := tx.DeleteCustomVolume(pool, name); err != nil {
			return err
		}
		return volumeEvent(tx, api.ActionVolumeDeleted, pool, name, "", nil)
	})
	if err == nil {
		os.Remove(lock.Name())
	}
	return err
}

// UpdateVolume sets and then unsets config keys of custom volume name on
// pool. A change of size= changes its cap at once, attached or not, and
// a cap below what it holds is refused.
func (e *Engine) UpdateVolume(ctx context.Context, pool, name string, set map[string]string, unset []string) error {
	return e.UpdateVolumeIf(ctx, pool, name, func(map[string]string) (map[string]string, []string, error) { return set, unset, nil })
}

// UpdateVolumeIf is UpdateVolume with the keys to set and unset chosen by
// change from the volume's config (its description among the keys) as
// the write's transaction reads it: a write that replaces the whole
// config, or that holds to an ETag, races no other. change may refuse.
func (e *Engine) UpdateVolumeIf(ctx context.Context, pool, name string, change func(config map[string]string) (set map[string]string, unset []string, err error)) error {
	lock, err := e.volumeLock(pool, name)
	if err != nil {
		return err
	}
	defer lock.Close()
	var before, after *store.CustomVolume
	o, err := e.journal.Begin("volume-update", volumeTarget(pool, name), func(tx *store.Tx, rec *store.Op) error {
		v, err := tx.CustomVolume(pool, name)
		if err != nil {
			return err
		}
		set, unset, err := change(maps.Clone(orEmpty(v.Config)))
		if err != nil {
			return err
		}
		for k, val := range set {
			if err := checkVolumeConfig(k, val); err != nil {
				return err
			}
		}
		before, after = v, cloneVolume(v)
		if after.Config == nil {
			after.Config = map[string]string{}
		}
		maps.Copy(after.Config, set)
		for _, k := range unset {
			if _, ok := after.Config[k]; !ok {
				return errkind.Wrap(errkind.NotFound, "volume %q in pool %q has no config key %q", name, pool, k)
			}
			delete(after.Config, k)
		}
		// An undo puts the record back, and with it the cap it says.
		rec.Undo.Restore = &store.Restore{Volumes: []*store.CustomVolume{before}}
		return tx.PutCustomVolume(after)
	})
	if err != nil {
		return err
	}
	if size := volumeSize(after.Config); size != volumeSize(before.Config) {
		d, _, err := e.driver(ctx, pool)
		if err == nil {
			err = setQuota(ctx, d, volumeWhat(after), pool, after.Volume, size, true)
		}
		if err != nil {
			return o.Fail(ctx, err)
		}
	}
	o.Step("resized")
	return o.Commit(ctx, func(tx *store.Tx) error { return volumeEvent(tx, api.ActionVolumeUpdated, pool, name, "", nil) })
}

// cloneVolume copies v deeply enough to change its config and snapshots.
func cloneVolume(v *store.CustomVolume) *store.CustomVolume {
	c := *v
	c.Config, c.Snapshots, c.Retired = maps.Clone(v.Config), slices.Clone(v.Snapshots), slices.Clone(v.Retired)
	return &c
}

// refitVolumeQuotas gives the volumes the caps their records say, after
// an operation that changed them was undone.
func (e *Engine) refitVolumeQuotas(ctx context.Context, vols []*store.CustomVolume) error {
	for _, v := range vols {
		d, _, err := e.driver(ctx, v.Pool)
		if err == nil {
			err = fitCap(ctx, d, volumeWhat(v), v.Pool, v.Volume, volumeSize(v.Config))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// CreateVolumeSnapshot takes a snapshot of custom volume name on pool.
func (e *Engine) CreateVolumeSnapshot(ctx context.Context, pool, name string, opts SnapshotOptions) (*store.Snapshot, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	_, d, unlock, err := e.lockedVolume(ctx, pool, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s := &store.Snapshot{ID: newID("s-"), UUID: newUUID()}
	o, err := e.journal.Begin("volume-snapshot", volumeTarget(pool, name), func(tx *store.Tx, rec *store.Op) error {
		v, err := tx.CustomVolume(pool, name)
		if err != nil {
			return err
		}
		s.Volume = v.Volume
		taken := func(snap string) bool { return volumeSnapshotTaken(v, snap) }
		if err := opts.prepare(s, fmt.Sprintf("volume %q in pool %q", name, pool), v.Config, v.Snapshots, &v.NextSnap, taken); err != nil {
			return err
		}
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: s.Volume, Snapshot: s.ID}}
		return tx.PutCustomVolume(v) // the counter may have moved
	})
	if err != nil {
		return nil, err
	}
	if err := d.CreateSnapshot(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID}); err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("snapshot volume %s: %w", name, err))
	}
	o.Step("snapshotted")
	s.Created = time.Now().UTC()
	return s, o.Commit(ctx, func(tx *store.Tx) error {
		v, err := tx.CustomVolume(pool, name)
		if err != nil {
			return fmt.Errorf("snapshot volume %s: the volume went meanwhile: %w", name, err)
		}
		v.Snapshots = append(v.Snapshots, *s)
		if opts.scheduled {
			v.ScheduledAt = opts.At
		}
		if err := tx.PutCustomVolume(v); err != nil {
			return err
		}
		return volumeEvent(tx, api.ActionVolumeSnapshotCreated, pool, name, s.Name, nil)
	})
}

func volumeSnapshotTaken(v *store.CustomVolume, snap string) bool {
	_, err := v.Snapshot(snap)
	return err == nil
}

// VolumeSnapshots lists the snapshots of custom volume name on pool,
// oldest first.
func (e *Engine) VolumeSnapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error) {
	var v *store.CustomVolume
	if err := e.store.View(func(tx *store.Tx) (err error) { v, err = tx.CustomVolume(pool, name); return err }); err != nil {
		return nil, err
	}
	return apiVolumeSnapshots(v.Snapshots), nil
}

// VolumeSnapshot describes snapshot snap of custom volume name on pool.
func (e *Engine) VolumeSnapshot(ctx context.Context, pool, name, snap string) (*api.StorageVolumeSnapshot, error) {
	var s *store.Snapshot
	err := e.store.View(func(tx *store.Tx) error {
		v, err := tx.CustomVolume(pool, name)
		if err == nil {
			s, err = v.Snapshot(snap)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &apiVolumeSnapshots([]store.Snapshot{*s})[0], nil
}

// RestoreVolumeSnapshot brings custom volume name on pool back to
// snapshot snap, keeping every snapshot, older or newer: the snapshot is
// cloned into a new head, which gets the volume's cap, and the old head
// goes (on ZFS, with its last snapshot). A volume that a running instance
// attaches is refused: the instance has the old head mounted, and
// cannot be moved onto the new one under its feet.
func (e *Engine) RestoreVolumeSnapshot(ctx context.Context, pool, name, snap string) error {
	v, d, unlock, err := e.lockedVolume(ctx, pool, name)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := v.Snapshot(snap)
	if err != nil {
		return err
	}
	users, unlockUsers, err := e.lockUsers(pool, name)
	if err != nil {
		return err
	}
	defer unlockUsers()
	head := newID("v-")
	kept := false // the old head stays for its snapshots
	o, err := e.journal.Begin("volume-restore", volumeTarget(pool, name), func(tx *store.Tx, rec *store.Op) error {
		if err := e.replaceable(tx, pool, name, users, "restore"); err != nil {
			return err
		}
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: head}}
		return nil
	})
	if err != nil {
		return err
	}
	err = d.CloneVolume(ctx, storage.Ref{Volume: s.Volume, Snapshot: s.ID}, head)
	if err == nil {
		err = setQuota(ctx, d, volumeWhat(v), pool, head, volumeSize(v.Config), false)
	}
	if err != nil {
		return o.Fail(ctx, fmt.Errorf("restore volume %s to %s: %w", name, snap, err))
	}
	o.Step("cloned")
	err = o.Commit(ctx, func(tx *store.Tx) error {
		cur, err := tx.CustomVolume(pool, name)
		if err != nil {
			return err
		}
		if cur.Volume != v.Volume {
			return errkind.Wrap(errkind.Busy, "restore volume %s: another command changed it meanwhile", name)
		}
		if err := e.replaceable(tx, pool, name, users, "restore"); err != nil {
			return err
		}
		t, _, err := snapshot.Restore(treeOf(cur.Volume, cur.Retired, cur.Snapshots), snap, head)
		if err != nil {
			return err
		}
		// Nothing runs on the old head: it goes now, or with its last
		// snapshot where the driver needs it for them.
		t, gone := snapshot.Collect(t, holdsSnapshots(d))
		for _, g := range gone {
			o.Rec.Retire.Volumes = append(o.Rec.Retire.Volumes, store.VolumeRef{Pool: pool, Volume: g})
		}
		kept = slices.Contains(t.Retired, v.Volume)
		cur.Volume, cur.Retired, cur.Snapshots = fromTree(t, cur.Snapshots)
		if err := tx.PutCustomVolume(cur); err != nil {
			return err
		}
		return volumeEvent(tx, api.ActionVolumeRestored, pool, name, "", map[string]any{"snapshot": snap})
	})
	if r, ok := d.(headRetirer); ok && err == nil && kept {
		// A head left mounted only clutters the host.
		if err := r.RetireHead(ctx, v.Volume); err != nil {
			slog.Warn("could not unmount the head the restore replaced", "volume", name, "pool", pool, "error", err)
		}
	}
	return err
}

// DeleteVolumeSnapshot deletes snapshot snap of custom volume name on
// pool, and the heads that restores retired and that may go with it.
func (e *Engine) DeleteVolumeSnapshot(ctx context.Context, pool, name, snap string) error {
	_, d, unlock, err := e.lockedVolume(ctx, pool, name)
	if err != nil {
		return err
	}
	defer unlock()
	return e.journal.Do(ctx, "volume-snapshot-delete", volumeTarget(pool, name)+"/"+snap, func(tx *store.Tx, rec *store.Op) error {
		v, err := tx.CustomVolume(pool, name)
		if err != nil {
			return err
		}
		if _, err := v.Snapshot(snap); err != nil {
			return err
		}
		t, s, gone, err := snapshot.DeleteSnapshot(treeOf(v.Volume, v.Retired, v.Snapshots), snap, holdsSnapshots(d))
		if err != nil {
			return err
		}
		// The heads go after the snapshot (the list is removed from its end).
		for _, g := range gone {
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: pool, Volume: g})
		}
		rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: pool, Volume: s.Volume, Snapshot: s.ID})
		v.Volume, v.Retired, v.Snapshots = fromTree(t, v.Snapshots)
		if err := tx.PutCustomVolume(v); err != nil {
			return err
		}
		return volumeEvent(tx, api.ActionVolumeSnapshotDeleted, pool, name, snap, nil)
	})
}

// putNewVolume writes a custom volume just made, and logs it.
func putNewVolume(tx *store.Tx, v *store.CustomVolume) error {
	if err := tx.PutCustomVolume(v); err != nil {
		return err
	}
	return volumeEvent(tx, api.ActionVolumeCreated, v.Pool, v.Name, "", nil)
}
