package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/revert"
	"github.com/silo-dev/silo/internal/store"
)

// liveChange is an instance whose config or devices, once expanded, may
// have changed; run is set when it runs.
type liveChange struct {
	run      *store.Run
	old, new *store.Instance // expanded
}

// UpdateInstance changes an instance's own config, devices or profiles
// with fn, checks what results, gives new nics their addresses, and
// carries the change to the instance: the size of its root disk at once,
// and if it runs, limits and nic, proxy and disk devices live, the rest
// at its next start. A change that cannot be carried out is not recorded.
func (e *Engine) UpdateInstance(ctx context.Context, name string, fn func(inst *store.Instance) error) error {
	unlock, err := e.lockInstances([]string{name})
	if err != nil {
		return err
	}
	defer unlock()
	return e.update(ctx, "update", name, func(tx *store.Tx) error {
		return instanceEvent(tx, api.ActionInstanceUpdated, name, nil)
	}, func(tx *store.Tx, undo *store.Restore) ([]*store.Instance, error) {
		inst, err := tx.Instance(name)
		if err != nil {
			return nil, err
		}
		undo.Instances = append(undo.Instances, cloneInstance(inst))
		before, err := expanded(tx, inst)
		if err != nil {
			return nil, err
		}
		if err := fn(inst); err != nil {
			return nil, err
		}
		return []*store.Instance{before}, tx.PutInstance(inst)
	})
}

// update makes a change of records that running instances may have to
// follow. change makes it in the store, notes in undo the records as they
// were, and returns the instances it touches as they were (expanded). The
// journal holds the old records and what is plugged until the running
// instances follow, so that a command killed half-way is undone. Once
// they have, the commit logs the change's event.
func (e *Engine) update(ctx context.Context, kind, target string, event func(tx *store.Tx) error, change func(tx *store.Tx, undo *store.Restore) ([]*store.Instance, error)) error {
	var changes []liveChange
	o, err := e.journal.Begin(kind, target, func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Restore = &store.Restore{}
		before, err := change(tx, rec.Undo.Restore)
		if err != nil {
			return err
		}
		if changes, err = e.settle(tx, before); err != nil {
			return err
		}
		for _, c := range changes {
			if c.resized() {
				rec.Undo.Quotas = append(rec.Undo.Quotas, c.new.Name)
			}
			if c.run == nil {
				continue
			}
			for _, dev := range c.changed() {
				rec.Undo.Devices = append(rec.Undo.Devices, store.DeviceRef{Instance: c.new.Name, Device: dev})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		if err := e.checkDisks(ctx, c.new, c.run, c.changed()); err != nil {
			return o.Fail(ctx, err)
		}
	}
	if err := e.applyQuotas(ctx, changes); err != nil {
		return o.Fail(ctx, err)
	}
	o.Step("resized")
	if err := e.applyLive(ctx, changes); err != nil {
		return o.Fail(ctx, err)
	}
	o.Step("applied")
	return o.Commit(ctx, event)
}

// lockInstances takes the locks of instances names, in order, which
// starts and stops take too: a change of devices is carried to a running
// instance whole, never beside a start that reads them. unlock lets go.
func (e *Engine) lockInstances(names []string) (unlock func(), err error) {
	var held []interface{ Close() error }
	unlock = func() {
		for _, l := range held {
			l.Close()
		}
	}
	for _, name := range slices.Sorted(slices.Values(names)) {
		l, err := e.instanceLock(name)
		if err != nil {
			unlock()
			return nil, err
		}
		held = append(held, l)
	}
	return unlock, nil
}

func cloneInstance(inst *store.Instance) *store.Instance {
	c := *inst
	c.Config, c.Devices, c.Profiles = maps.Clone(inst.Config), inst.Devices.Clone(), slices.Clone(inst.Profiles)
	return &c
}

// settle checks, after a change, each instance in before (as it was,
// expanded) as it now is; gives its nics what they lack; and lists them
// as they were and are, with their runs, to carry the change out on.
func (e *Engine) settle(tx *store.Tx, before []*store.Instance) ([]liveChange, error) {
	var changes []liveChange
	for _, old := range before {
		inst, err := tx.Instance(old.Name)
		if err != nil {
			return nil, err
		}
		x, err := settleRecord(tx, inst)
		if err != nil {
			return nil, err
		}
		run, err := liveRun(tx, inst.Name)
		if err != nil {
			return nil, err
		}
		changes = append(changes, liveChange{run: run, old: old, new: x})
	}
	return changes, nil
}

// checkInstance checks an instance's own config and devices, and what
// they make with its profiles'.
func checkInstance(tx *store.Tx, inst *store.Instance) error {
	seen := map[string]bool{}
	for _, p := range inst.Profiles {
		if seen[p] {
			return errkind.Wrap(errkind.Invalid, "profile %s is listed twice", p)
		}
		seen[p] = true
		if !tx.HasProfile(p) {
			return errkind.Wrap(errkind.NotFound, "profile %q not found", p)
		}
	}
	for name, d := range inst.Devices {
		if err := checkDevice(name, d); err != nil {
			return err
		}
	}
	x, err := expanded(tx, inst)
	if err != nil {
		return err
	}
	return checkExpanded(inst, x.Devices)
}

// applyLive carries changes out on the instances that run; on failure it
// undoes the limits it changed, and the journal's undo the devices.
func (e *Engine) applyLive(ctx context.Context, changes []liveChange) error {
	undo := revert.New()
	defer undo.Fail()
	for _, c := range changes {
		if c.run == nil {
			continue
		}
		oldLimits, _ := limits(c.old.Config)
		newLimits, err := limits(c.new.Config)
		if err != nil {
			return err
		}
		if oldLimits != newLimits {
			if err := e.applyLimits(ctx, c.run, newLimits); err != nil {
				return fmt.Errorf("apply limits to %s: %w", c.run.Name, err)
			}
			undo.Add(func() { _ = e.applyLimits(context.WithoutCancel(ctx), c.run, oldLimits) })
		}
		if err := e.replug(ctx, c); err != nil {
			return err
		}
	}
	undo.Success()
	return nil
}

// applyQuotas carries the changes of root disk size in changes out on
// the volumes. On failure the journal's undo puts the caps back as the
// records were (refitQuotas).
func (e *Engine) applyQuotas(ctx context.Context, changes []liveChange) error {
	for _, c := range changes {
		if !c.resized() {
			continue
		}
		d, _, err := e.driver(ctx, c.new.Pool)
		if err == nil {
			err = setRootQuota(ctx, c.new, d, rootSize(c.new.Devices), true)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resized says whether the change is one of root disk size.
func (c liveChange) resized() bool {
	return rootSize(c.old.Devices) != rootSize(c.new.Devices)
}

// changed lists the live devices that changed, came or went, by name.
func (c liveChange) changed() []string {
	oldDevs, newDevs := liveDevices(c.old), liveDevices(c.new)
	all := map[string]bool{}
	for _, devs := range []store.Devices{oldDevs, newDevs} {
		for dev := range devs {
			all[dev] = true
		}
	}
	var out []string
	for _, dev := range slices.Sorted(maps.Keys(all)) {
		od, hadOld := oldDevs[dev]
		nd, hasNew := newDevs[dev]
		if !hadOld || !hasNew || !maps.Equal(od, nd) || !sameVolatile(c.old, c.new, dev) {
			out = append(out, dev)
		}
	}
	return out
}

// replug unplugs the devices of a running instance that changed or went,
// and plugs those that changed or came, then brings its networks up to
// date. On failure the journal's undo puts them back (see replugRefs).
func (e *Engine) replug(ctx context.Context, c liveChange) error {
	oldDevs, newDevs := liveDevices(c.old), liveDevices(c.new)
	changed := c.changed()
	for _, dev := range changed {
		if _, ok := oldDevs[dev]; ok {
			if err := e.unplug(ctx, c.run, c.old, dev); err != nil {
				return err
			}
		}
	}
	for _, n := range bridgedNetworks(oldDevs, newDevs) {
		if err := e.ensureNetwork(ctx, n); err != nil {
			return err
		}
	}
	for _, dev := range changed {
		if _, ok := newDevs[dev]; ok {
			if err := e.plug(ctx, c.run.Pid, c.new, dev); err != nil {
				return err
			}
		}
	}
	return nil
}

// forRecordedDevices calls fn with each device that refs names, of a
// running instance, as the records have it now; it skips the others.
func (e *Engine) forRecordedDevices(refs []store.DeviceRef, fn func(run *store.Run, inst *store.Instance, dev string) error) error {
	var errs []error
	for _, ref := range refs {
		var run *store.Run
		var inst *store.Instance
		err := e.store.View(func(tx *store.Tx) error {
			raw, err := tx.Instance(ref.Instance)
			if err != nil {
				return err
			}
			if inst, err = expanded(tx, raw); err != nil {
				return err
			}
			run, err = liveRun(tx, ref.Instance)
			return err
		})
		if errors.Is(err, errkind.NotFound) || err == nil && (run == nil || inst.Devices[ref.Device] == nil) {
			continue
		}
		if err == nil {
			err = fn(run, inst, ref.Device)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("instance %s: %w", ref.Instance, err))
		}
	}
	return errors.Join(errs...)
}

// unplugRefs takes the devices refs names out of their running
// instances, as the records have them now.
func (e *Engine) unplugRefs(ctx context.Context, refs []store.DeviceRef) error {
	return e.forRecordedDevices(refs, func(run *store.Run, inst *store.Instance, dev string) error {
		return e.unplug(ctx, run, inst, dev)
	})
}

// replugRefs brings the devices refs names, in their running instances,
// to what the records now say: each is taken out, as a change that was
// cut short may have left it, and plugged again if the records have it.
// The networks follow the records too.
func (e *Engine) replugRefs(ctx context.Context, refs []store.DeviceRef) error {
	if len(refs) == 0 {
		return nil
	}
	err := e.forRecordedDevices(refs, func(run *store.Run, inst *store.Instance, dev string) error {
		if err := e.unplug(ctx, run, inst, dev); err != nil {
			return err
		}
		return e.plug(ctx, run.Pid, inst, dev)
	})
	e.refreshNetworks(ctx)
	return err
}

// liveDevices are the devices that can change on a running instance.
func liveDevices(inst *store.Instance) store.Devices {
	out := store.Devices{}
	for name, d := range inst.Devices {
		if d["type"] == DeviceNIC || d["type"] == DeviceProxy || isDisk(d) {
			out[name] = d
		}
	}
	return out
}

// sameVolatile says whether what silo gave device dev is the same in a
// and b.
func sameVolatile(a, b *store.Instance, dev string) bool {
	for _, k := range []string{volHwaddr, volHostName, volIPv4, volIPv6} {
		if a.Config[volatileKey(dev, k)] != b.Config[volatileKey(dev, k)] {
			return false
		}
	}
	return true
}

// SetConfig sets and unsets config keys of an instance. Limits apply at
// once to a running instance; the other keys at its next start.
func (e *Engine) SetConfig(ctx context.Context, name string, set map[string]string, unset []string) error {
	if err := CheckKeys(unset...); err != nil {
		return err
	}
	return e.UpdateInstance(ctx, name, func(inst *store.Instance) error {
		if inst.Config == nil {
			inst.Config = map[string]string{}
		}
		maps.Copy(inst.Config, set)
		for _, k := range unset {
			delete(inst.Config, k)
		}
		return nil
	})
}

// putNewInstance writes a new instance, with the isolated range it asks
// for: the one found when its operation began, if no command that
// committed since took it.
func putNewInstance(tx *store.Tx, inst *store.Instance) error {
	if _, err := settleRecord(tx, inst); err != nil {
		return err
	}
	return instanceEvent(tx, api.ActionInstanceCreated, inst.Name, nil)
}

// settleRecord checks inst, gives it what its devices and config ask
// (nic addresses, an isolated range), checks its kernel forwards, and
// writes it. It returns inst expanded.
func settleRecord(tx *store.Tx, inst *store.Instance) (*store.Instance, error) {
	if err := checkInstance(tx, inst); err != nil {
		return nil, err
	}
	x, err := expanded(tx, inst)
	if err != nil {
		return nil, err
	}
	if err := allocNICs(tx, inst, x.Devices); err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	if err := allocIdmap(tx, inst); err != nil {
		return nil, err
	}
	if x, err = expanded(tx, inst); err != nil {
		return nil, err
	}
	if err := checkNAT(tx, x); err != nil {
		return nil, err
	}
	return x, tx.PutInstance(inst)
}
