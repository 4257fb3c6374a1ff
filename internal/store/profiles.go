package store

import (
	"maps"
	"time"
)

// Device is a device's settings, its type under the key "type", as LXD
// writes them.
type Device map[string]string

// Devices are named devices.
type Devices map[string]Device

// Clone copies ds deeply.
func (ds Devices) Clone() Devices {
	if ds == nil {
		return nil
	}
	out := make(Devices, len(ds))
	for name, d := range ds {
		out[name] = maps.Clone(d)
	}
	return out
}

// DevicesOf copies devices as the API carries them, never nil.
func DevicesOf(ds map[string]map[string]string) Devices {
	out := make(Devices, len(ds))
	for name, d := range ds {
		out[name] = maps.Clone(d)
	}
	return out
}

// Map copies ds as the API carries them, never nil.
func (ds Devices) Map() map[string]map[string]string {
	out := make(map[string]map[string]string, len(ds))
	for name, d := range ds {
		out[name] = maps.Clone(d)
	}
	return out
}

// Profile is a named set of config and devices that instances apply, in
// order, before their own.
type Profile struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Config      map[string]string `json:"config,omitempty"`
	Devices     Devices           `json:"devices,omitempty"`
}

// Network is a managed bridge. Its config holds what was resolved when it
// was made (ipv4.address=auto becomes the subnet chosen), so that it comes
// back the same after a host reboot.
type Network struct {
	Name    string            `json:"name"`
	Bridge  string            `json:"bridge"` // the Linux bridge's name
	Config  map[string]string `json:"config,omitempty"`
	Created time.Time         `json:"created"`
}

// Profile returns the profile called name: a copy of its own, which the
// caller may change.
func (t *Tx) Profile(name string) (*Profile, error) {
	p, ok := t.profiles[name]
	if !ok {
		var err error
		if p, err = get[Profile](t, bucketProfiles, name, "profile"); err != nil {
			return nil, err
		}
		if t.profiles == nil {
			t.profiles = map[string]*Profile{}
		}
		t.profiles[name] = p
	}
	c := *p
	c.Config, c.Devices = maps.Clone(p.Config), p.Devices.Clone()
	return &c, nil
}

// PutProfile writes p.
func (t *Tx) PutProfile(p *Profile) error {
	delete(t.profiles, p.Name)
	return put(t, bucketProfiles, p.Name, p)
}

// DeleteProfile removes the profile called name.
func (t *Tx) DeleteProfile(name string) error {
	delete(t.profiles, name)
	return del(t, bucketProfiles, name, "profile")
}

// HasProfile reports whether a profile is called name.
func (t *Tx) HasProfile(name string) bool { return has(t, bucketProfiles, name) }

// Profiles lists the profiles by name.
func (t *Tx) Profiles() ([]*Profile, error) { return all[Profile](t, bucketProfiles) }

// Network returns the network called name.
func (t *Tx) Network(name string) (*Network, error) {
	return get[Network](t, bucketNetworks, name, "network")
}

// PutNetwork writes n.
func (t *Tx) PutNetwork(n *Network) error { return put(t, bucketNetworks, n.Name, n) }

// DeleteNetwork removes the network called name.
func (t *Tx) DeleteNetwork(name string) error { return del(t, bucketNetworks, name, "network") }

// HasNetwork reports whether a network is called name.
func (t *Tx) HasNetwork(name string) bool { return has(t, bucketNetworks, name) }

// Networks lists the networks by name.
func (t *Tx) Networks() ([]*Network, error) { return all[Network](t, bucketNetworks) }
