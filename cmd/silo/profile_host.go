package main

import (
	"context"
	"maps"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/remote"
)

// profileHost is where a profile command acts: this host's engine,
// directly, or a remote through its client.
type profileHost interface {
	// profile returns a profile and, on a remote, its ETag for replace.
	profile(ctx context.Context, name string) (*api.Profile, string, error)
	// create makes a profile with what p gives it.
	create(ctx context.Context, name string, p api.ProfilePut) error
	configure(ctx context.Context, name string, set map[string]string, unset []string) error
	// replace writes a profile whole; with etag, only if it has not
	// changed since it was read.
	replace(ctx context.Context, name string, p api.ProfilePut, etag string) error
	copy(ctx context.Context, src, dst string) error
	rename(ctx context.Context, name, newName string) error
	remove(ctx context.Context, name string) error
	assign(ctx context.Context, instance string, profiles []string) error
	deviceHost
}

// deviceHost is where a device command acts on the devices of an
// instance or a profile.
type deviceHost interface {
	devices(ctx context.Context, o engine.Owner) (store.Devices, error)
	addDevice(ctx context.Context, o engine.Owner, name string, d store.Device) error
	setDevice(ctx context.Context, o engine.Owner, name string, set map[string]string, unset []string) error
	removeDevice(ctx context.Context, o engine.Owner, name string) error
	// editDevices changes o's devices with edit.
	editDevices(ctx context.Context, o engine.Owner, edit engine.DeviceEdit) error
}

type localProfiles struct{ e *engine.Engine }

func (l localProfiles) profile(_ context.Context, name string) (*api.Profile, string, error) {
	p, err := l.e.Profile(name)
	return p, "", err
}

func (l localProfiles) create(ctx context.Context, name string, p api.ProfilePut) error {
	return l.e.CreateProfile(ctx, &store.Profile{Name: name, Description: p.Description, Config: p.Config, Devices: store.DevicesOf(p.Devices)})
}

func (l localProfiles) configure(ctx context.Context, name string, set map[string]string, unset []string) error {
	return l.e.SetProfileConfig(ctx, name, set, unset)
}

// replace writes at once: here the engine's transaction is the check.
func (l localProfiles) replace(ctx context.Context, name string, p api.ProfilePut, _ string) error {
	return l.e.ReplaceProfile(ctx, &store.Profile{Name: name, Description: p.Description, Config: p.Config, Devices: store.DevicesOf(p.Devices)})
}

func (l localProfiles) copy(_ context.Context, src, dst string) error {
	return l.e.CopyProfile(src, dst)
}

func (l localProfiles) rename(_ context.Context, name, newName string) error {
	return l.e.RenameProfile(name, newName)
}

func (l localProfiles) remove(_ context.Context, name string) error { return l.e.DeleteProfile(name) }

func (l localProfiles) assign(ctx context.Context, instance string, profiles []string) error {
	return l.e.AssignProfiles(ctx, instance, profiles)
}

func (l localProfiles) devices(_ context.Context, o engine.Owner) (store.Devices, error) {
	return l.e.Devices(o)
}

func (l localProfiles) addDevice(ctx context.Context, o engine.Owner, name string, d store.Device) error {
	return l.e.AddDevice(ctx, o, name, d)
}

func (l localProfiles) setDevice(ctx context.Context, o engine.Owner, name string, set map[string]string, unset []string) error {
	return l.e.SetDevice(ctx, o, name, set, unset)
}

func (l localProfiles) removeDevice(ctx context.Context, o engine.Owner, name string) error {
	return l.e.RemoveDevice(ctx, o, name)
}

func (l localProfiles) editDevices(ctx context.Context, o engine.Owner, edit engine.DeviceEdit) error {
	return l.e.EditDevices(ctx, o, edit)
}

type remoteProfiles struct{ cl *client.Client }

func (r remoteProfiles) profile(ctx context.Context, name string) (*api.Profile, string, error) {
	return r.cl.Profile(ctx, name)
}

func (r remoteProfiles) create(ctx context.Context, name string, p api.ProfilePut) error {
	return r.cl.CreateProfile(ctx, api.ProfilesPost{Name: name, Description: p.Description, Config: p.Config, Devices: p.Devices})
}

// configure is a PATCH: the keys unset go as "", which the server
// removes.
func (r remoteProfiles) configure(ctx context.Context, name string, set map[string]string, unset []string) error {
	return r.cl.PatchProfile(ctx, name, api.ProfilePut{Config: patchConfig(set, unset)}, "")
}

func (r remoteProfiles) replace(ctx context.Context, name string, p api.ProfilePut, etag string) error {
	return r.cl.UpdateProfile(ctx, name, p, etag)
}

// copy reads the profile and makes another of it, as lxc profile copy
// does.
func (r remoteProfiles) copy(ctx context.Context, src, dst string) error {
	return copyProfile(ctx, r, src, r, dst)
}

// copyProfile makes profile dst on host to a copy of profile src on host
// from.
func copyProfile(ctx context.Context, from profileHost, src string, to profileHost, dst string) error {
	p, _, err := from.profile(ctx, src)
	if err != nil {
		return err
	}
	return to.create(ctx, dst, api.ProfilePut{Description: p.Description, Config: p.Config, Devices: p.Devices})
}

// profileHostOf is the host that ref names, with what closes it.
func profileHostOf(c *cli.Context, ref remote.Ref) (profileHost, func(), error) {
	if ref.IsLocal() {
		e, err := engine.Open(c.Context, c.String("state-dir"))
		if err != nil {
			return nil, nil, err
		}
		return localProfiles{e}, func() { e.Close() }, nil
	}
	cfg, err := loadRemotes()
	if err != nil {
		return nil, nil, err
	}
	cl, err := cfg.Client(ref.Remote)
	if err != nil {
		return nil, nil, err
	}
	return remoteProfiles{cl}, func() {}, nil
}

func (r remoteProfiles) rename(ctx context.Context, name, newName string) error {
	return r.cl.RenameProfile(ctx, name, newName)
}

func (r remoteProfiles) remove(ctx context.Context, name string) error {
	return r.cl.DeleteProfile(ctx, name)
}

func (r remoteProfiles) assign(ctx context.Context, instance string, profiles []string) error {
	return r.putInstance(ctx, instance, func(put *api.InstancePut, _ *api.Instance) error {
		put.Profiles = profiles
		return nil
	})
}

// putInstance rewrites an instance whole as change makes it from what
// was read, with the ETag of the read: a write between the two is
// refused, not overwritten.
func (r remoteProfiles) putInstance(ctx context.Context, name string, change func(put *api.InstancePut, i *api.Instance) error) error {
	i, etag, err := r.cl.Instance(ctx, name)
	if err != nil {
		return err
	}
	put := api.InstancePut{Config: i.Config, Devices: i.Devices, Profiles: i.Profiles, Ephemeral: &i.Ephemeral}
	if err := change(&put, i); err != nil {
		return err
	}
	return awaited(ctx)(r.cl.UpdateInstance(ctx, name, put, etag))
}

func (r remoteProfiles) devices(ctx context.Context, o engine.Owner) (store.Devices, error) {
	if o.Profile {
		p, _, err := r.cl.Profile(ctx, o.Name)
		if err != nil {
			return nil, err
		}
		return store.DevicesOf(p.Devices), nil
	}
	i, _, err := r.cl.Instance(ctx, o.Name)
	if err != nil {
		return nil, err
	}
	return store.DevicesOf(i.Devices), nil
}

// addDevice is the engine's edit, run here on what the remote holds and
// written back with its ETag; the server checks the device again.
func (r remoteProfiles) addDevice(ctx context.Context, o engine.Owner, name string, d store.Device) error {
	return r.editDevices(ctx, o, engine.AddingDevice(o, name, d))
}

func (r remoteProfiles) setDevice(ctx context.Context, o engine.Owner, name string, set map[string]string, unset []string) error {
	return r.editDevices(ctx, o, engine.SettingDevice(o, name, set, unset))
}

func (r remoteProfiles) removeDevice(ctx context.Context, o engine.Owner, name string) error {
	return r.editDevices(ctx, o, engine.RemovingDevice(o, name))
}

// editDevices reads o's devices, edits them and writes them back with the
// ETag of the read. An instance inherits what its expanded devices hold
// beyond its own.
func (r remoteProfiles) editDevices(ctx context.Context, o engine.Owner, edit engine.DeviceEdit) error {
	if o.Profile {
		p, etag, err := r.cl.Profile(ctx, o.Name)
		if err != nil {
			return err
		}
		own := store.DevicesOf(p.Devices)
		if err := edit(own, nil); err != nil {
			return err
		}
		return r.cl.UpdateProfile(ctx, o.Name, api.ProfilePut{Description: p.Description, Config: p.Config, Devices: own.Map()}, etag)
	}
	return r.putInstance(ctx, o.Name, func(put *api.InstancePut, i *api.Instance) error {
		own := store.DevicesOf(i.Devices)
		inherited := store.DevicesOf(i.ExpandedDevices)
		maps.DeleteFunc(inherited, func(name string, _ store.Device) bool { _, ok := own[name]; return ok })
		if err := edit(own, inherited); err != nil {
			return err
		}
		put.Devices = own.Map()
		return nil
	})
}
