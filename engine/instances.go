package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// CreateOptions are the settings of a new instance.
type CreateOptions struct {
	Config    map[string]string // checked with ParseConfig
	Ephemeral bool              // deleted when it stops
	// Profiles apply in order (nil: the default profile).
	Profiles []string
	// Devices are the instance's own, checked with ParseDevice.
	Devices store.Devices
	// Network puts eth0 on this network instead of its profiles' nics;
	// NoNetwork gives the instance no nic at all.
	Network   string
	NoNetwork bool
}

// reserveInstance checks that name is free for a new instance and holds it.
func reserveInstance(tx *store.Tx, rec *store.Op, name string) error {
	if tx.HasInstance(name) {
		return errkind.Wrap(errkind.AlreadyExists, "instance %q already exists", name)
	}
	rec.Reserved = append(rec.Reserved, store.Reservation("instance", name))
	return nil
}

// Create makes the instance name, a writable clone of an image, on pool
// (the default pool when empty), with its own machine ID.
func (e *Engine) Create(ctx context.Context, imageRef, name, pool string, opts CreateOptions) (*store.Instance, error) {
	if err := checkName("instance", name); err != nil {
		return nil, err
	}
	profiles := opts.Profiles
	if profiles == nil {
		profiles = []string{store.DefaultProfile}
	}
	var err error
	if pool == "" {
		if pool, err = e.profilesPool(profiles); err != nil {
			return nil, err
		}
	}
	if pool, err = e.pool(ctx, pool); err != nil {
		return nil, err
	}
	d, _, err := e.driver(ctx, pool)
	if err != nil {
		return nil, err
	}
	vol := newID("i-")
	var fp, base string
	var size int64
	inst := &store.Instance{Name: name, Pool: pool, Volume: vol, Created: time.Now().UTC(),
		Config: opts.Config, Ephemeral: opts.Ephemeral, Profiles: profiles, Devices: opts.Devices.Clone()}
	o, err := e.journal.Begin("create", name, func(tx *store.Tx, rec *store.Op) error {
		if err := networkDevices(tx, inst, opts.Network, opts.NoNetwork); err != nil {
			return err
		}
		if err := fitRoot(tx, inst); err != nil {
			return err
		}
		if err := checkInstance(tx, inst); err != nil {
			return err
		}
		x, err := expanded(tx, inst)
		if err != nil {
			return err
		}
		size = rootSize(x.Devices)
		img, err := tx.FindImage(imageRef)
		if err != nil {
			return err
		}
		fp, base = img.Fingerprint, img.Bases[pool]
		inst.Image, inst.Metadata, inst.Templates = fp, img.Metadata, img.Templates
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: vol}}
		if err := allocIdmap(tx, inst); err != nil {
			return err
		}
		return reserveInstance(tx, rec, name)
	})
	if err != nil {
		return nil, err
	}
	m, err := e.instanceMapOf(inst)
	if err == nil {
		base, inst.Shift, err = e.cloneBase(ctx, d, pool, fp, base, m)
	}
	if err != nil {
		return nil, o.Fail(ctx, err)
	}
	err = d.CloneVolume(ctx, storage.Ref{Volume: base}, vol)
	if err == nil {
		err = identify(ctx, d, inst, image.WhenCreate)
	}
	if err == nil && size > 0 {
		err = setRootQuota(ctx, inst, d, size, true)
	}
	if err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("create %s: %w", name, err))
	}
	o.Step("cloned")
	return inst, o.Commit(ctx, func(tx *store.Tx) error {
		if _, err := tx.Image(fp); err != nil {
			return fmt.Errorf("create %s: the image was deleted meanwhile: %w", name, err)
		}
		return putNewInstance(tx, inst)
	})
}

// identify gives the new volume of inst its own machine ID and hostname,
// and renders the image templates that trigger names.
func identify(ctx context.Context, d storage.Volumes, inst *store.Instance, trigger string) error {
	root, err := d.VolumePath(ctx, inst.Volume)
	if err != nil {
		return err
	}
	if err := giveIdentity(root, inst.Name, onDisk(inst.Shift)); err != nil {
		return err
	}
	return applyTemplates(root, inst, trigger)
}

// Instances lists the instances, by name, with their state.
func (e *Engine) Instances(ctx context.Context) ([]*api.Instance, error) {
	out := []*api.Instance{}
	err := e.store.View(func(tx *store.Tx) error {
		nets, err := networksByName(tx)
		if err != nil {
			return err
		}
		return eachInstance(tx, func(inst, x *store.Instance, run *store.Run) error {
			out = append(out, e.apiInstance(inst, x, run, nets))
			return nil
		})
	})
	return out, err
}

// eachInstance calls fn with each instance, by name, expanded (x), and
// its run (nil when none is recorded).
func eachInstance(tx *store.Tx, fn func(inst, x *store.Instance, run *store.Run) error) error {
	insts, err := tx.Instances()
	if err != nil {
		return err
	}
	for _, inst := range insts {
		run, err := tx.Run(inst.Name)
		if err != nil {
			return err
		}
		x, err := expanded(tx, inst)
		if err != nil {
			return err
		}
		if err := fn(inst, x, run); err != nil {
			return err
		}
	}
	return nil
}

// Instance describes the instance called name, with the disk usage of
// its root.
func (e *Engine) Instance(ctx context.Context, name string) (*api.Instance, error) {
	return e.describe(ctx, name, true)
}

// InstanceBrief is Instance without the disk usage, which walks the
// root's files on a pool without quotas.
func (e *Engine) InstanceBrief(ctx context.Context, name string) (*api.Instance, error) {
	return e.describe(ctx, name, false)
}

// describe describes instance name, with the disk usage of its root when
// usage is set.
func (e *Engine) describe(ctx context.Context, name string, usage bool) (*api.Instance, error) {
	var inst, x *store.Instance
	var run *store.Run
	var nets map[string]*store.Network
	err := e.store.View(func(tx *store.Tx) (err error) {
		if inst, err = tx.Instance(name); err != nil {
			return err
		}
		if nets, err = networksByName(tx); err != nil {
			return err
		}
		if x, err = expanded(tx, inst); err != nil {
			return err
		}
		run, err = tx.Run(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := e.apiInstance(inst, x, run, nets)
	if usage {
		d, _, err := e.driver(ctx, inst.Pool)
		if err != nil {
			return nil, err
		}
		n, err := d.Usage(ctx, storage.Ref{Volume: inst.Volume})
		if err != nil {
			return nil, fmt.Errorf("usage of %s: %w", name, err)
		}
		var total int64
		if q, ok := d.(storage.Quota); ok && rootSize(x.Devices) > 0 {
			if total, err = q.Quota(ctx, inst.Volume); err != nil {
				return nil, fmt.Errorf("size of %s: %w", name, err)
			}
		}
		root, _ := rootDisk(x.Devices)
		out.State.Disk = map[string]api.InstanceStateDisk{root: {Usage: n, Total: total}}
	}
	if out.State.Pid != 0 {
		nicCounters(int(out.State.Pid), out.State.Network)
	}
	return out, nil
}

// instanceDriver returns instance name and the driver of its pool.
func (e *Engine) instanceDriver(ctx context.Context, name string) (*store.Instance, storage.Driver, error) {
	inst, err := e.instance(name)
	if err != nil {
		return nil, nil, err
	}
	d, _, err := e.driver(ctx, inst.Pool)
	return inst, d, err
}

func (e *Engine) instance(name string) (*store.Instance, error) {
	var inst *store.Instance
	err := e.store.View(func(tx *store.Tx) error {
		var err error
		inst, err = tx.Instance(name)
		return err
	})
	return inst, err
}

// Delete deletes an instance with its snapshots; a running one only with
// force, which stops it first.
func (e *Engine) Delete(ctx context.Context, name string, force bool) error {
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	if force {
		if err := e.stopIfRunning(ctx, name, true, DefaultStopTimeout); err != nil {
			return err
		}
	}
	// A start killed before its monitor took the run over may have left
	// the instance's root mounted, which must go before its volume.
	if run, err := e.liveRun(name); err == nil && run == nil {
		if err := removeRunDir(e.runDir(name)); err != nil {
			return err
		}
	}
	err = e.remove(ctx, name)
	if errors.Is(err, errkind.NotFound) && force {
		return nil // an ephemeral instance went as it stopped
	}
	if err == nil {
		os.Remove(lock.Name())
	}
	return err
}

// Rename gives an instance a new name; nothing on disk changes.
func (e *Engine) Rename(ctx context.Context, oldName, newName string) error {
	if err := checkName("instance", newName); err != nil {
		return err
	}
	lock, err := e.instanceLock(oldName)
	if err != nil {
		return err
	}
	defer lock.Close()
	err = e.store.Update(func(tx *store.Tx) error {
		inst, err := tx.Instance(oldName)
		if err != nil {
			return err
		}
		if err := notRunning(tx, oldName, "rename"); err != nil {
			return err
		}
		if tx.HasInstance(newName) {
			return errkind.Wrap(errkind.AlreadyExists, "instance %q already exists", newName)
		}
		if taken, err := tx.Reserved(store.Reservation("instance", newName)); err != nil || taken {
			return errkindOr(err, errkind.Wrap(errkind.Busy, "instance %q is being made by another silo command", newName))
		}
		if err := tx.DeleteInstance(oldName); err != nil {
			return err
		}
		inst.Name = newName
		if err := tx.PutInstance(inst); err != nil {
			return err
		}
		return instanceEvent(tx, api.ActionInstanceRenamed, newName, map[string]any{"old_name": oldName})
	})
	if err == nil {
		// The log of the last run follows; losing it would lose nothing
		// but that log. A start killed before its monitor took over may
		// have left the root mounted under the old name.
		_ = os.Rename(e.consoleLog(oldName), e.consoleLog(newName))
		_ = removeRunDir(e.runDir(oldName))
		e.refreshNetworks(ctx)
	}
	return err
}

// syncVolume makes what silo wrote into volume vol durable, before the
// store records it. (zfs-fuse, as FUSE, ignores a filesystem sync; on
// OpenZFS it commits the intent log.)
func syncVolume(ctx context.Context, d storage.Volumes, vol string) error {
	root, err := d.VolumePath(ctx, vol)
	if err != nil {
		return err
	}
	return fsutil.SyncFS(root)
}
