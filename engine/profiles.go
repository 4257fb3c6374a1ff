package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/internal/store"
)

// Profiles lists the profiles, by name.
func (e *Engine) Profiles() ([]*api.Profile, error) {
	var out []*api.Profile
	err := e.store.View(func(tx *store.Tx) error {
		ps, err := tx.Profiles()
		if err != nil {
			return err
		}
		insts, err := tx.Instances()
		if err != nil {
			return err
		}
		for _, p := range ps {
			out = append(out, apiProfile(p, insts))
		}
		return nil
	})
	return out, err
}

// Profile returns the profile called name.
func (e *Engine) Profile(name string) (*api.Profile, error) {
	var out *api.Profile
	err := e.store.View(func(tx *store.Tx) error {
		p, err := tx.Profile(name)
		if err != nil {
			return err
		}
		insts, err := tx.Instances()
		out = apiProfile(p, insts)
		return err
	})
	return out, err
}

// CreateProfile makes profile p, with its config and devices, checked as
// a write of them is: in one transaction, so that a profile is never
// there half-made.
func (e *Engine) CreateProfile(ctx context.Context, p *store.Profile) error {
	if err := checkName("profile", p.Name); err != nil {
		return err
	}
	if err := checkProfile(p); err != nil {
		return err
	}
	if err := e.checkProfileDevices(ctx, p); err != nil {
		return err
	}
	return e.store.Update(func(tx *store.Tx) error {
		if tx.HasProfile(p.Name) {
			return errkind.Wrap(errkind.AlreadyExists, "profile %q already exists", p.Name)
		}
		if err := tx.PutProfile(p); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionProfileCreated, "profiles", p.Name)
	})
}

// CopyProfile makes dst a copy of src.
func (e *Engine) CopyProfile(src, dst string) error {
	if err := checkName("profile", dst); err != nil {
		return err
	}
	return e.store.Update(func(tx *store.Tx) error {
		p, err := tx.Profile(src)
		if err != nil {
			return err
		}
		if tx.HasProfile(dst) {
			return errkind.Wrap(errkind.AlreadyExists, "profile %q already exists", dst)
		}
		p.Name = dst
		if err := tx.PutProfile(p); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionProfileCreated, "profiles", dst)
	})
}

// RenameProfile renames a profile, in every instance that applies it.
func (e *Engine) RenameProfile(old, name string) error {
	if err := checkName("profile", name); err != nil {
		return err
	}
	if old == store.DefaultProfile {
		return errkind.Wrap(errkind.Invalid, "the default profile keeps its name")
	}
	return e.store.Update(func(tx *store.Tx) error {
		p, err := tx.Profile(old)
		if err != nil {
			return err
		}
		if tx.HasProfile(name) {
			return errkind.Wrap(errkind.AlreadyExists, "profile %q already exists", name)
		}
		insts, err := tx.Instances()
		if err != nil {
			return err
		}
		for _, inst := range insts {
			if i := slices.Index(inst.Profiles, old); i >= 0 {
				inst.Profiles[i] = name
				if err := tx.PutInstance(inst); err != nil {
					return err
				}
			}
		}
		if err := tx.DeleteProfile(old); err != nil {
			return err
		}
		p.Name = name
		if err := tx.PutProfile(p); err != nil {
			return err
		}
		return events.Record(tx, api.ActionProfileRenamed, api.Path("profiles", name), map[string]any{"old_name": old})
	})
}

// DeleteProfile deletes a profile that no instance applies.
func (e *Engine) DeleteProfile(name string) error {
	if name == store.DefaultProfile {
		return errkind.Wrap(errkind.Invalid, "the default profile cannot be deleted")
	}
	return e.store.Update(func(tx *store.Tx) error {
		if _, err := tx.Profile(name); err != nil {
			return err
		}
		insts, err := tx.Instances()
		if err != nil {
			return err
		}
		for _, inst := range insts {
			if slices.Contains(inst.Profiles, name) {
				return errkind.Wrap(errkind.Busy, "profile %q is used by instance %s", name, inst.Name)
			}
		}
		if err := tx.DeleteProfile(name); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionProfileDeleted, "profiles", name)
	})
}

// UpdateProfile changes a profile with fn, checks every instance that
// applies it as it would then be, and carries the change to those that
// run, live where the device type allows.
func (e *Engine) UpdateProfile(ctx context.Context, name string, fn func(p *store.Profile) error) error {
	var users []string
	err := e.store.View(func(tx *store.Tx) error {
		insts, err := tx.Instances()
		for _, inst := range insts {
			if slices.Contains(inst.Profiles, name) {
				users = append(users, inst.Name)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	unlock, err := e.lockInstances(users)
	if err != nil {
		return err
	}
	defer unlock()
	return e.update(ctx, "update-profile", name, func(tx *store.Tx) error {
		return objectEvent(tx, api.ActionProfileUpdated, "profiles", name)
	}, func(tx *store.Tx, undo *store.Restore) ([]*store.Instance, error) {
		p, err := tx.Profile(name)
		if err != nil {
			return nil, err
		}
		old := *p
		old.Config, old.Devices = maps.Clone(p.Config), p.Devices.Clone()
		undo.Profile = &old
		insts, err := tx.Instances()
		if err != nil {
			return nil, err
		}
		var before []*store.Instance
		for _, inst := range insts {
			if !slices.Contains(inst.Profiles, name) {
				continue
			}
			undo.Instances = append(undo.Instances, cloneInstance(inst))
			x, err := expanded(tx, inst)
			if err != nil {
				return nil, err
			}
			before = append(before, x)
		}
		if err := fn(p); err != nil {
			return nil, err
		}
		if err := checkProfile(p); err != nil {
			return nil, err
		}
		return before, tx.PutProfile(p)
	})
}

// checkProfileDevices checks what a profile's devices name on the host:
// their parent interfaces, and their disks' sources.
func (e *Engine) checkProfileDevices(ctx context.Context, p *store.Profile) error {
	for name, d := range p.Devices {
		if err := checkParent(name, d); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
		if err := e.checkDiskSource(ctx, name, d); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	return nil
}

// checkProfile checks a profile's own config and devices.
func checkProfile(p *store.Profile) error {
	for k, v := range p.Config {
		if err := checkConfig(k, v); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	for name, d := range p.Devices {
		if err := checkDevice(name, d); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	return nil
}

// AssignProfiles sets the profiles an instance applies, in order.
func (e *Engine) AssignProfiles(ctx context.Context, name string, profiles []string) error {
	return e.UpdateInstance(ctx, name, func(inst *store.Instance) error {
		inst.Profiles = profiles
		return nil
	})
}

// fitRoot gives inst a root disk of its own when its profiles' root disk
// is on another pool than the one it lives on.
func fitRoot(tx *store.Tx, inst *store.Instance) error {
	_, devs, err := expand(tx, inst)
	if err != nil {
		return err
	}
	name, d := rootDisk(devs)
	if d != nil && d["pool"] == inst.Pool {
		return nil
	}
	if name == "" {
		name = api.RootDevice
	}
	if inst.Devices == nil {
		inst.Devices = store.Devices{}
	}
	inst.Devices[name] = store.Device{"type": DeviceDisk, "path": "/", "pool": inst.Pool}
	return nil
}

// profilesPool is the pool the root disk of profiles names, "" if none.
func (e *Engine) profilesPool(profiles []string) (string, error) {
	var pool string
	err := e.store.View(func(tx *store.Tx) error {
		_, devs, err := expand(tx, &store.Instance{Profiles: profiles})
		if _, d := rootDisk(devs); d != nil {
			pool = d["pool"]
		}
		return err
	})
	return pool, err
}

// networkDevices gives a new instance its nics as launch's flags ask
// (see NICDevices).
func networkDevices(tx *store.Tx, inst *store.Instance, network string, noNetwork bool) error {
	if network == "" && !noNetwork {
		return nil
	}
	_, devs, err := expand(tx, inst)
	if err != nil {
		return err
	}
	if network != "" && !tx.HasNetwork(network) && network != store.DefaultNetwork {
		return errkind.Wrap(errkind.NotFound, "network %q not found", network)
	}
	inst.Devices = NICDevices(devs, inst.Devices, network)
	return nil
}

// NICDevices is own, the devices of a new instance whose profiles give
// it expanded, with the profiles' nics hidden and, when network is set,
// eth0 on that network: what launch's --no-network and --network ask.
func NICDevices(expanded, own store.Devices, network string) store.Devices {
	if own == nil {
		own = store.Devices{}
	}
	for name, d := range expanded {
		if d["type"] == DeviceNIC && own[name] == nil {
			own[name] = store.Device{"type": deviceNone}
		}
	}
	if network != "" {
		own["eth0"] = store.Device{"type": DeviceNIC, "name": "eth0", "network": network}
	}
	return own
}
