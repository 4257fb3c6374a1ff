package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/runtime/container"
)

// The keys of an instance's user namespace.
const (
	// KeyPrivileged=true runs the instance without a user namespace: its
	// root is the host's root.
	KeyPrivileged = "security.privileged"
	// KeyIsolated=true gives the instance a range of host IDs of its own.
	KeyIsolated  = "security.idmap.isolated"
	KeyIdmapSize = "security.idmap.size" // the isolated range's size, 65536 by default
	KeyIdmapBase = "security.idmap.base" // the isolated range's first host ID, found when unset
)

// rootMap is root's subordinate map, read once per command.
var rootMap = sync.OnceValues(func() (idmap.Map, error) { return idmap.Root(idmap.SubUID, idmap.SubGID) })

func privileged(cfg map[string]string) bool { return cfg[KeyPrivileged] == "true" }

// allocIdmap records in inst the isolated range its config asks for: the
// one it has while that still fits and no other instance's overlaps it,
// else a new one. An instance that is not isolated has none; one that is
// unprivileged needs root's subordinate range to be sound. Run it in
// the transaction that writes inst, so that two commands cannot hand out
// one range twice.
func allocIdmap(tx *store.Tx, inst *store.Instance) error {
	cfg, _, err := expand(tx, inst) // a profile may make it isolated
	if err != nil {
		return err
	}
	var root idmap.Map
	if !privileged(cfg) {
		if root, err = rootMap(); err != nil {
			return err // refused now, not at the instance's start
		}
	}
	if privileged(cfg) || cfg[KeyIsolated] != "true" {
		inst.Idmap = nil
		if cfg[KeyIdmapBase] != "" || cfg[KeyIdmapSize] != "" {
			return errkind.Wrap(errkind.Invalid, "%s and %s apply to an unprivileged instance with %s=true", KeyIdmapBase, KeyIdmapSize, KeyIsolated)
		}
		return nil
	}
	size, base := uint64(idmap.MinSize), uint64(0)
	if v := cfg[KeyIdmapSize]; v != "" {
		size, _ = strconv.ParseUint(v, 10, 32) // checked by checkConfig
	}
	if v := cfg[KeyIdmapBase]; v != "" {
		base, _ = strconv.ParseUint(v, 10, 32)
	}
	taken, err := takenRanges(tx, inst.Name, root)
	if err != nil {
		return err
	}
	if cur := inst.Idmap; cur != nil && cur.Size == uint32(size) && (base == 0 || cur.Base == uint32(base)) {
		if _, err := idmap.Isolated(root, taken, cur.Base, cur.Size); err == nil {
			return nil
		}
		// Taken by a command that committed first: find another (or,
		// for a base asked for, refuse below).
	}
	r, err := idmap.Isolated(root, taken, uint32(base), uint32(size))
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.Name, err)
	}
	inst.Idmap = &store.Idmap{Base: r.Base, Size: r.Size}
	return nil
}

// takenRanges are the isolated ranges of the instances but the one called
// name: those recorded, and those that running instances still use after
// a config set that takes effect at their next start.
func takenRanges(tx *store.Tx, name string, root idmap.Map) ([]idmap.Range, error) {
	insts, err := tx.Instances()
	if err != nil {
		return nil, err
	}
	var taken []idmap.Range
	for _, o := range insts {
		if o.Name != name && o.Idmap != nil {
			taken = append(taken, idmap.Range{Base: o.Idmap.Base, Size: o.Idmap.Size})
		}
	}
	runs, err := tx.Runs()
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Name == name || !live(r) {
			continue
		}
		if base, size, ok := runningMap(r.Pid); ok && (base != root.UID || size != root.Size) {
			taken = append(taken, idmap.Range{Base: base, Size: size})
		}
	}
	return taken, nil
}

// runningMap is the UID map of the running init pid: ok is false for a
// privileged one.
func runningMap(pid int) (base, size uint32, ok bool) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	return idmap.Parse(string(b))
}

// overlappingRanges says which instances' isolated ranges overlap: none
// should.
func overlappingRanges(insts []*store.Instance) []string {
	var out []string
	for i, a := range insts {
		for _, b := range insts[i+1:] {
			if a.Idmap != nil && b.Idmap != nil &&
				(idmap.Range{Base: a.Idmap.Base, Size: a.Idmap.Size}).Overlaps(idmap.Range{Base: b.Idmap.Base, Size: b.Idmap.Size}) {
				out = append(out, fmt.Sprintf("instances %s and %s have overlapping isolated ranges", a.Name, b.Name))
			}
		}
	}
	return out
}

// instanceMapOf is the map inst boots under, with its profiles' config.
func (e *Engine) instanceMapOf(inst *store.Instance) (*idmap.Map, error) {
	var x *store.Instance
	err := e.store.View(func(tx *store.Tx) (err error) { x, err = expanded(tx, inst); return err })
	if err != nil {
		return nil, err
	}
	return instanceMap(x)
}

// instanceMap is the map inst (expanded) boots under: nil when it is
// privileged.
func instanceMap(inst *store.Instance) (*idmap.Map, error) {
	if privileged(inst.Config) {
		return nil, nil
	}
	if inst.Idmap != nil {
		m := idmap.Of(idmap.Range{Base: inst.Idmap.Base, Size: inst.Idmap.Size})
		return &m, nil
	}
	if inst.Config[KeyIsolated] == "true" {
		return nil, fmt.Errorf("instance %s is isolated but has no range recorded: set %s again", inst.Name, KeyIsolated)
	}
	m, err := rootMap()
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// apiIdmap is the map of inst as programs see it: read from the kernel
// for a running instance (pid > 0), else the one it will boot under.
func apiIdmap(inst *store.Instance, pid int) (privileged bool, entries []api.IdmapEntry) {
	var uid, gid, size uint32
	if pid > 0 {
		g, _ := os.ReadFile(fmt.Sprintf("/proc/%d/gid_map", pid))
		var okU, okG bool
		uid, size, okU = runningMap(pid)
		gid, _, okG = idmap.Parse(string(g))
		if !okU || !okG {
			return true, []api.IdmapEntry{}
		}
	} else {
		m, err := instanceMap(inst)
		if err != nil || m == nil {
			return m == nil && err == nil, []api.IdmapEntry{}
		}
		uid, gid, size = m.UID, m.GID, m.Size
	}
	return false, []api.IdmapEntry{
		{IsUID: true, HostID: int64(uid), NSID: 0, Range: int64(size)},
		{IsGID: true, HostID: int64(gid), NSID: 0, Range: int64(size)},
	}
}

// shiftMap is the map of a shift record: nil for none.
func shiftMap(s *store.Shift) *idmap.Map {
	if s == nil {
		return nil
	}
	return &idmap.Map{UID: s.UID, GID: s.GID, Size: s.Size}
}

// shiftRecord is the record of a shift by map m: nil for none.
func shiftRecord(m *idmap.Map) *store.Shift {
	if m == nil {
		return nil
	}
	return &store.Shift{UID: m.UID, GID: m.GID, Size: m.Size}
}

// onDisk is the shift from the IDs inside an instance to those on disk
// in a volume whose files are shifted by s.
func onDisk(s *store.Shift) idmap.Shift { return idmap.Shift{To: shiftMap(s)} }

// inside is the shift from the IDs on disk, in a volume whose files are
// shifted by s, to those inside the instance: what exports write.
func inside(s *store.Shift) idmap.Shift { return idmap.Shift{From: shiftMap(s)} }

// canIdmap says whether the filesystem where path lies can be idmapped.
func (e *Engine) canIdmap(path string) (bool, error) {
	return container.CanIdmap(path, filepath.Join(filepath.Dir(e.runBase()), "idmap"))
}

// bootRoot is the root that the runtime boots an instance from, whose
// volume is mounted at root, in run directory dir: the volume itself for
// a privileged instance (m nil); else a mount of it in dir, which the
// instance's root can reach: as it is when the volume is shifted on disk,
// else idmapped by m.
func bootRoot(root, dir string, m *idmap.Map, shifted bool) (string, error) {
	if m == nil {
		return root, nil
	}
	if ns, nested := ownNamespace(); nested && uint64(max(m.UID, m.GID))+uint64(m.Size) > uint64(ns) {
		return "", errkind.Wrap(errkind.Invalid,
			"silo runs in a user namespace (in an instance) that maps IDs 0-%d only, and the instance's map reaches %d: set %s=true, which gives it a range of its own (%d IDs by default)",
			ns-1, uint64(max(m.UID, m.GID))+uint64(m.Size)-1, KeyIsolated, idmap.MinSize)
	}
	p := filepath.Join(dir, container.RootDir)
	if shifted {
		return p, container.BindRoot(root, p)
	}
	return p, container.MountRoot(root, p, *m)
}

// ownNamespace is the count of IDs, from 0, that the user namespace silo
// runs in maps; nested is false in the host's own.
func ownNamespace() (size uint32, nested bool) {
	b, _ := os.ReadFile("/proc/self/uid_map")
	_, size, nested = idmap.Parse(string(b))
	return size, nested
}
