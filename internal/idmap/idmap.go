// Package idmap holds the ID maps of unprivileged instances: the range of
// host IDs that root may hand out (from /etc/subuid and /etc/subgid), and
// the isolated ranges allocated in it. It is plain data and runs without
// root.
package idmap

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/errkind"
)

const (
	// DefaultBase and DefaultSize are root's range when the host names
	// none, as in LXD and Incus.
	DefaultBase = 1000000
	DefaultSize = 1000000000
	// MinSize is the fewest IDs an instance gets: a distribution's users
	// run up to 65534 (nobody).
	MinSize = 65536
)

// Map maps the IDs 0 to Size-1 inside an instance onto the host's UIDs
// from UID and GIDs from GID.
type Map struct {
	UID, GID uint32
	Size     uint32
}

// Range is a block of host IDs, used for UIDs and GIDs alike.
type Range struct {
	Base, Size uint32
}

func (r Range) end() uint64 { return uint64(r.Base) + uint64(r.Size) }

// Overlaps says whether r and o share an ID.
func (r Range) Overlaps(o Range) bool {
	return uint64(r.Base) < o.end() && uint64(o.Base) < r.end()
}

func (r Range) contains(o Range) bool {
	return r.Base <= o.Base && o.end() <= r.end()
}

// Files are where the host names root's subordinate ranges.
const (
	SubUID = "/etc/subuid"
	SubGID = "/etc/subgid"
)

// Root is the map of root's subordinate ranges: the first entry for root
// in subuid and in subgid, or the default range where a file is missing or
// names none for root (as LXD does: Debian ships both files empty). A
// malformed entry, or a range too small for one instance, is refused.
func Root(subuid, subgid string) (Map, error) {
	u, err := rootRange(subuid)
	if err != nil {
		return Map{}, err
	}
	g, err := rootRange(subgid)
	if err != nil {
		return Map{}, err
	}
	return Map{UID: u.Base, GID: g.Base, Size: min(u.Size, g.Size)}, nil
}

func rootRange(file string) (Range, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return Range{DefaultBase, DefaultSize}, nil
	}
	if err != nil {
		return Range{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if parts[0] != "root" && parts[0] != "0" {
			continue
		}
		base, err1 := strconv.ParseUint(strings.TrimSpace(parts[min(1, len(parts)-1)]), 10, 32)
		size, err2 := strconv.ParseUint(strings.TrimSpace(parts[len(parts)-1]), 10, 32)
		if len(parts) != 3 || err1 != nil || err2 != nil || base+size > 1<<32-1 {
			return Range{}, errkind.Wrap(errkind.Invalid, "%s: root's entry %q is not root:BASE:COUNT", file, sc.Text())
		}
		if size < MinSize {
			return Range{}, errkind.Wrap(errkind.Invalid,
				"%s: root's subordinate range has %d IDs, fewer than the %d an unprivileged instance needs: widen it, or use security.privileged=true", file, size, MinSize)
		}
		return Range{uint32(base), uint32(size)}, nil
	}
	if err := sc.Err(); err != nil {
		return Range{}, fmt.Errorf("%s: %w", file, err)
	}
	return Range{DefaultBase, DefaultSize}, nil
}

// Isolated returns the range of size IDs, at base or, when base is 0, at
// the lowest free place, that lies in root's ranges past the first MinSize
// IDs (which the instances that share root's map use) and overlaps none
// of taken. An isolated instance's UIDs and GIDs start at the same host
// ID, as in LXD.
func Isolated(root Map, taken []Range, base, size uint32) (Range, error) {
	lo := max(root.UID, root.GID)
	hi := min(uint64(root.UID)+uint64(root.Size), uint64(root.GID)+uint64(root.Size))
	pool := Range{Base: lo, Size: uint32(hi - uint64(lo))}
	if size < MinSize {
		return Range{}, errkind.Wrap(errkind.Invalid, "security.idmap.size %d: an instance needs at least %d IDs", size, MinSize)
	}
	if base != 0 {
		r := Range{base, size}
		if !pool.contains(r) {
			return Range{}, errkind.Wrap(errkind.Invalid,
				"security.idmap.base %d: the range %d-%d is not within root's subordinate range %d-%d (%s, %s)",
				base, base, r.end()-1, pool.Base, pool.end()-1, SubUID, SubGID)
		}
		if shared := (Range{pool.Base, MinSize}); r.Overlaps(shared) {
			return Range{}, errkind.Wrap(errkind.Invalid,
				"security.idmap.base %d: the range %d-%d overlaps %d-%d, the IDs that the instances without an isolated range share",
				base, base, r.end()-1, shared.Base, shared.end()-1)
		}
		for _, t := range taken {
			if r.Overlaps(t) {
				return Range{}, errkind.Wrap(errkind.Invalid,
					"security.idmap.base %d: the range %d-%d overlaps the isolated range %d-%d of another instance", base, base, r.end()-1, t.Base, t.end()-1)
			}
		}
		return r, nil
	}
	sorted := append([]Range(nil), taken...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Base < sorted[j].Base })
	next := uint64(pool.Base) + MinSize
	for _, t := range sorted {
		if next+uint64(size) <= uint64(t.Base) {
			break
		}
		next = max(next, t.end())
	}
	if next+uint64(size) > pool.end() {
		return Range{}, errkind.Wrap(errkind.NoSpace,
			"no free range of %d IDs left in root's subordinate range %d-%d for an isolated instance: widen it in %s and %s", size, pool.Base, pool.end()-1, SubUID, SubGID)
	}
	return Range{uint32(next), size}, nil
}

// Of is the map of an isolated range.
func Of(r Range) Map { return Map{UID: r.Base, GID: r.Base, Size: r.Size} }

// Parse reads a /proc/PID/uid_map or gid_map: its first line's host ID and
// count. ok is false for the identity map of the host's root, which a
// privileged instance has.
func Parse(text string) (host, size uint32, ok bool) {
	f := strings.Fields(text)
	if len(f) < 3 {
		return 0, 0, false
	}
	inside, e1 := strconv.ParseUint(f[0], 10, 32)
	h, e2 := strconv.ParseUint(f[1], 10, 32)
	n, e3 := strconv.ParseUint(f[2], 10, 32)
	if e1 != nil || e2 != nil || e3 != nil || inside != 0 || (h == 0 && n == 1<<32-1) {
		return 0, 0, false
	}
	return uint32(h), uint32(n), true
}

// Nobody is the ID inside an instance that an ID outside its map shows
// as (the kernel's overflow ID): where a shift meets one, it gives it.
const Nobody = 65534

// Shift moves the IDs of files from one map to another: a volume whose
// files are shifted by From (nil: as the image has them) to one shifted
// by To (nil: unshifted). It is the fallback for filesystems that cannot
// be idmapped, whose volumes carry their instance's host IDs on disk.
type Shift struct{ From, To *Map }

// None says whether s leaves every ID as it is.
func (s Shift) None() bool { return same(s.From, s.To) }

func same(a, b *Map) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// UID is the UID that uid becomes.
func (s Shift) UID(uid uint32) uint32 { return s.id(uid, func(m *Map) uint32 { return m.UID }) }

// GID is the GID that gid becomes.
func (s Shift) GID(gid uint32) uint32 { return s.id(gid, func(m *Map) uint32 { return m.GID }) }

func (s Shift) id(id uint32, base func(*Map) uint32) uint32 {
	if s.None() {
		return id
	}
	inside := id
	if s.From != nil {
		inside = Nobody
		if b := base(s.From); id >= b && id-b < s.From.Size {
			inside = id - b
		}
	}
	if s.To == nil {
		return inside
	}
	if inside >= s.To.Size {
		inside = Nobody
	}
	return base(s.To) + inside
}

// The tags of POSIX ACL entries that carry an ID (linux/posix_acl.h).
const (
	aclUser  = 0x02
	aclGroup = 0x08
)

// ACLXattrs are the extended attributes that hold POSIX ACLs, whose
// named entries carry IDs.
var ACLXattrs = []string{"system.posix_acl_access", "system.posix_acl_default"}

// ACL is the POSIX ACL xattr value v (version 2: a 4-byte header, then
// 8-byte entries of tag, permissions and ID, little-endian) with the IDs
// of its named users and groups shifted. A value it cannot parse is
// returned as it is.
func (s Shift) ACL(v []byte) []byte {
	if s.None() || len(v) < 4 || (len(v)-4)%8 != 0 {
		return v
	}
	out := append([]byte(nil), v...)
	for off := 4; off < len(out); off += 8 {
		tag := uint16(out[off]) | uint16(out[off+1])<<8
		id := uint32(out[off+4]) | uint32(out[off+5])<<8 | uint32(out[off+6])<<16 | uint32(out[off+7])<<24
		switch tag {
		case aclUser:
			id = s.UID(id)
		case aclGroup:
			id = s.GID(id)
		default:
			continue
		}
		out[off+4], out[off+5], out[off+6], out[off+7] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
	}
	return out
}
