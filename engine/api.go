package engine

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/units"
	"github.com/silo-dev/silo/runtime/container"
)

// apiInstance is inst as programs see it, with the state of its run (nil
// when none is recorded).
func (e *Engine) apiInstance(inst, x *store.Instance, run *store.Run, nets map[string]*store.Network) *api.Instance {
	arch := image.Architecture()
	if inst.Metadata != nil && inst.Metadata.Architecture != "" {
		arch = inst.Metadata.Architecture
	}
	code, state, pid := api.Stopped, &api.InstanceState{}, 0
	if run != nil && live(run) {
		pid = run.Pid
		code, state.Pid, state.StartedAt = api.Running, int64(run.Pid), run.Started
		cgroup := e.cgroup(inst.Name)
		state.Memory.Usage, _ = container.MemoryUsage(cgroup)
		var err error
		if state.Processes, err = container.Processes(cgroup); err != nil {
			state.Processes = -1
		}
	}
	state.Status, state.StatusCode = code.String(), code
	state.Network = apiNICs(x, pid != 0, nets)
	privileged, ids := apiIdmap(x, pid)
	return &api.Instance{Name: inst.Name, Type: api.TypeContainer, Status: code.String(), StatusCode: code,
		Architecture: arch, Image: inst.Image, Config: orEmpty(maps.Clone(inst.Config)),
		Devices: inst.Devices.Map(), Profiles: append([]string{}, inst.Profiles...),
		ExpandedConfig: orEmpty(maps.Clone(x.Config)), ExpandedDevices: x.Devices.Map(),
		Ephemeral: inst.Ephemeral, CreatedAt: inst.Created, State: state, Snapshots: apiSnapshots(inst.Snapshots),
		Privileged: privileged, Idmap: ids}
}

// apiNICs are the nics of x (expanded) with the addresses silo gave them
// on nets.
func apiNICs(x *store.Instance, running bool, nets map[string]*store.Network) map[string]api.InstanceStateNetwork {
	out := map[string]api.InstanceStateNetwork{}
	for dev, d := range x.Devices {
		if d["type"] != DeviceNIC {
			continue
		}
		n := api.InstanceStateNetwork{Addresses: []api.InstanceStateNetworkAddress{}, Hwaddr: x.Config[volatileKey(dev, volHwaddr)],
			HostName: x.Config[volatileKey(dev, volHostName)], State: "down", Type: "broadcast"}
		if running {
			n.State = "up"
		}
		for _, fam := range []struct{ vol, key, name string }{{volIPv4, netIPv4, "inet"}, {volIPv6, netIPv6, "inet6"}} {
			a, err := netip.ParseAddr(x.Config[volatileKey(dev, fam.vol)])
			net := nets[d["network"]]
			if err != nil || net == nil {
				continue
			}
			p, _ := netConfigPrefix(net, fam.key)
			n.Addresses = append(n.Addresses, api.InstanceStateNetworkAddress{Family: fam.name, Address: a.String(),
				Netmask: strconv.Itoa(p.Bits()), Scope: "global"})
		}
		out[nicName(dev, d)] = n
	}
	return out
}

// apiSnapshots are snaps as programs see them: no volume IDs.
func apiSnapshots(snaps []store.Snapshot) []api.InstanceSnapshot {
	out := []api.InstanceSnapshot{}
	for _, s := range snaps {
		out = append(out, api.InstanceSnapshot{Name: s.Name, CreatedAt: s.Created, ExpiresAt: s.Expires, UUID: s.UUID})
	}
	return out
}

// apiImage is img as programs see it: no file paths, no volume IDs.
func apiImage(img *store.Image) *api.Image {
	spec := imageSpec(img)
	out := &api.Image{Fingerprint: img.Fingerprint, Aliases: []api.ImageAlias{}, Type: api.TypeContainer,
		Size: img.Size, Properties: map[string]string{}, UploadedAt: img.Created, Layout: spec.Layout,
		Compression: img.Compression}
	if spec.Layout == image.LayoutSplit {
		out.RootfsFormat = spec.RootfsFormat
	}
	for _, a := range img.Aliases {
		out.Aliases = append(out.Aliases, api.ImageAlias{Name: a})
	}
	if m := img.Metadata; m != nil {
		out.Architecture = m.Architecture
		maps.Copy(out.Properties, m.Properties)
		if m.CreationDate != 0 {
			out.CreatedAt = time.Unix(m.CreationDate, 0).UTC()
		}
		out.Templates = slices.Sorted(maps.Keys(m.Templates))
	}
	return out
}

// apiPool is p as programs see it, with what it holds.
func apiPool(tx *store.Tx, p *store.Pool) (*api.StoragePool, error) {
	users, err := usersOf(tx, p)
	if err != nil {
		return nil, err
	}
	out := &api.StoragePool{Name: p.Name, Driver: p.Driver, Config: map[string]string{}, Status: api.PoolCreated,
		UsedBy: []string{}, CreatedAt: p.Created}
	if p.Source != "" {
		out.Config["source"] = p.Source
	}
	if p.Size > 0 {
		out.Config["size"] = units.FormatSize(p.Size)
	}
	for _, name := range users.instances {
		out.UsedBy = append(out.UsedBy, api.Path("instances", name))
	}
	for _, fp := range users.images {
		out.UsedBy = append(out.UsedBy, api.Path("images", fp))
	}
	for _, v := range users.volumes {
		out.UsedBy = append(out.UsedBy, api.VolumePath(p.Name, v))
	}
	return out, nil
}

func apiProfile(p *store.Profile, insts []*store.Instance) *api.Profile {
	out := &api.Profile{Name: p.Name, Description: p.Description, Config: orEmpty(maps.Clone(p.Config)),
		Devices: p.Devices.Map(), UsedBy: []string{}}
	for _, inst := range insts {
		if slices.Contains(inst.Profiles, p.Name) {
			out.UsedBy = append(out.UsedBy, api.Path("instances", inst.Name))
		}
	}
	return out
}
