package engine

import (
	"context"
	"maps"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// Owner names what devices belong to: an instance, or a profile.
type Owner struct {
	Profile bool
	Name    string
}

func (o Owner) String() string {
	if o.Profile {
		return "profile " + o.Name
	}
	return "instance " + o.Name
}

// DeviceEdit changes the devices of an owner: own are its own, which it
// changes in place; inherited, for an instance, those of its profiles.
// The remote client runs the same edits on what it fetched, so that both
// refuse the same things in the same words.
type DeviceEdit func(own, inherited store.Devices) error

// EditDevices changes the devices of o with edit.
func (e *Engine) EditDevices(ctx context.Context, o Owner, edit DeviceEdit) error {
	if o.Profile {
		return e.UpdateProfile(ctx, o.Name, func(p *store.Profile) error {
			if p.Devices == nil {
				p.Devices = store.Devices{}
			}
			return edit(p.Devices, nil)
		})
	}
	var inherited store.Devices
	if err := e.store.View(func(tx *store.Tx) error {
		inst, err := tx.Instance(o.Name)
		if err != nil {
			return err
		}
		_, inherited, err = expand(tx, &store.Instance{Name: inst.Name, Profiles: inst.Profiles})
		return err
	}); err != nil {
		return err
	}
	return e.UpdateInstance(ctx, o.Name, func(inst *store.Instance) error {
		if inst.Devices == nil {
			inst.Devices = store.Devices{}
		}
		return edit(inst.Devices, inherited)
	})
}

// AddDevice gives o device name, checked with ParseDevice. On a running
// instance, a nic, a proxy or a disk is plugged at once.
func (e *Engine) AddDevice(ctx context.Context, o Owner, name string, d store.Device) error {
	if err := e.checkDiskSource(ctx, name, d); err != nil {
		return err
	}
	return e.EditDevices(ctx, o, AddingDevice(o, name, d))
}

// AddingDevice is the edit that gives o device name.
func AddingDevice(o Owner, name string, d store.Device) DeviceEdit {
	return func(own, _ store.Devices) error {
		if _, ok := own[name]; ok {
			return errkind.Wrap(errkind.AlreadyExists, "%s already has a device %s", o, name)
		}
		own[name] = d
		return nil
	}
}

// SetDevice sets keys of device name of o. A device an instance inherits
// from a profile becomes its own first (an override, as LXD calls it).
func (e *Engine) SetDevice(ctx context.Context, o Owner, name string, set map[string]string, unset []string) error {
	return e.EditDevices(ctx, o, SettingDevice(o, name, set, unset))
}

// SettingDevice is the edit that SetDevice makes.
func SettingDevice(o Owner, name string, set map[string]string, unset []string) DeviceEdit {
	return func(own, inherited store.Devices) error {
		d, ok := own[name]
		if !ok {
			if d, ok = inherited[name]; !ok {
				return errkind.Wrap(errkind.NotFound, "%s has no device %s", o, name)
			}
		}
		d = maps.Clone(d)
		for k, v := range set {
			if k == "type" {
				return errkind.Wrap(errkind.Invalid, "device %s: its type stays; remove it and add another", name)
			}
			d[k] = v
		}
		for _, k := range unset {
			delete(d, k)
		}
		if err := checkDevice(name, d); err != nil {
			return err
		}
		if err := checkParent(name, d); err != nil {
			return err
		}
		own[name] = d
		return nil
	}
}

// RemoveDevice removes o's own device name; an instance's device that
// hid or overrode a profile's gives way to the profile's again.
func (e *Engine) RemoveDevice(ctx context.Context, o Owner, name string) error {
	return e.EditDevices(ctx, o, RemovingDevice(o, name))
}

// RemovingDevice is the edit that RemoveDevice makes.
func RemovingDevice(o Owner, name string) DeviceEdit {
	return func(own, inherited store.Devices) error {
		if _, ok := own[name]; !ok {
			if _, ok := inherited[name]; ok {
				return errkind.Wrap(errkind.Invalid, "device %s of %s comes from its profiles: change the profile, or hide it with `silo config device add %s %s none`", name, o, o.Name, name)
			}
			return errkind.Wrap(errkind.NotFound, "%s has no device %s", o, name)
		}
		delete(own, name)
		return nil
	}
}

// Devices returns o's own devices.
func (e *Engine) Devices(o Owner) (store.Devices, error) {
	var out store.Devices
	err := e.store.View(func(tx *store.Tx) error {
		if o.Profile {
			p, err := tx.Profile(o.Name)
			if err == nil {
				out = p.Devices
			}
			return err
		}
		inst, err := tx.Instance(o.Name)
		if err == nil {
			out = inst.Devices
		}
		return err
	})
	if out == nil {
		out = store.Devices{}
	}
	return out, err
}

// SetProfileConfig sets and unsets config keys of a profile.
func (e *Engine) SetProfileConfig(ctx context.Context, name string, set map[string]string, unset []string) error {
	if err := CheckKeys(unset...); err != nil {
		return err
	}
	return e.UpdateProfile(ctx, name, func(p *store.Profile) error {
		if p.Config == nil {
			p.Config = map[string]string{}
		}
		maps.Copy(p.Config, set)
		for _, k := range unset {
			delete(p.Config, k)
		}
		return nil
	})
}

// ReplaceProfile puts p in place of the profile of its name, as
// `profile edit` gives it.
func (e *Engine) ReplaceProfile(ctx context.Context, p *store.Profile) error {
	return e.ReplaceProfileIf(ctx, p, nil)
}

// ReplaceProfileIf is ReplaceProfile, if check (when not nil) passes the
// profile as it stands, in the transaction of the write: for a write that
// holds an ETag.
func (e *Engine) ReplaceProfileIf(ctx context.Context, p *store.Profile, check func(cur *store.Profile) error) error {
	if err := e.checkProfileDevices(ctx, p); err != nil {
		return err
	}
	return e.UpdateProfile(ctx, p.Name, func(cur *store.Profile) error {
		if check != nil {
			if err := check(cur); err != nil {
				return err
			}
		}
		cur.Description, cur.Config, cur.Devices = p.Description, p.Config, p.Devices
		return nil
	})
}
