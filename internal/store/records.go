package store

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/silo-dev/silo/errkind"
)

// Pool is a named place where volumes live.
type Pool struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Driver  string    `json:"driver"`
	Source  string    `json:"source,omitempty"`
	Size    int64     `json:"size,omitempty"`
	Created time.Time `json:"created"`
	// Boot is the boot ID under which the pool was last made ready
	// (mounted, imported, swept): once per boot is enough.
	Boot string `json:"boot,omitempty"`
}

// Image is an imported root filesystem.
type Image struct {
	Fingerprint string `json:"fingerprint"`
	File        string `json:"file"` // the tarball as imported, under the image store
	// Layout is rootfs (a plain tarball; empty in records before LXD's
	// layouts), unified or split; a split image's rootfs is in Rootfs.
	Layout       string         `json:"layout,omitempty"`
	Rootfs       string         `json:"rootfs,omitempty"`
	RootfsFormat string         `json:"rootfs_format,omitempty"`
	Metadata     *ImageMetadata `json:"metadata,omitempty"`
	// Templates maps a template file's name to its text.
	Templates   map[string]string `json:"templates,omitempty"`
	Size        int64             `json:"size"`
	Compression string            `json:"compression"`
	Created     time.Time         `json:"created"`
	Aliases     []string          `json:"aliases"`
	// Bases maps a pool name to the ID of the image's read-only base volume there.
	Bases map[string]string `json:"bases,omitempty"`
	// Shifted maps a pool name, then a map (Shift.Key), to the ID of a
	// clone of the base there whose owners are shifted into that map: on
	// a filesystem that cannot be idmapped, unprivileged instances are
	// cloned from it.
	Shifted map[string]map[string]string `json:"shifted,omitempty"`
}

// ImageMetadata is what the store keeps of an image's metadata.yaml, in
// records of its own (the engine converts them), under the names that
// records written before it kept.
type ImageMetadata struct {
	Architecture string                    `json:"architecture"`
	CreationDate int64                     `json:"creation_date"` // Unix time
	ExpiryDate   int64                     `json:"expiry_date,omitempty"`
	Properties   map[string]string         `json:"properties,omitempty"`
	Templates    map[string]*ImageTemplate `json:"templates,omitempty"` // by the path they render
}

// ImageTemplate says when to render which template into a path.
type ImageTemplate struct {
	When       []string          `json:"when"` // create, copy, start
	CreateOnly bool              `json:"create_only,omitempty"`
	Template   string            `json:"template"` // a file name in Templates
	Properties map[string]string `json:"properties,omitempty"`
}

// Instance is a system container.
type Instance struct {
	Name   string            `json:"name"`
	Image  string            `json:"image"` // fingerprint it was created from
	Pool   string            `json:"pool"`
	Volume string            `json:"volume"` // ID of its current head
	Config map[string]string `json:"config,omitempty"`
	// Profiles apply in order, and then the instance's own Config and
	// Devices.
	Profiles  []string   `json:"profiles"`
	Devices   Devices    `json:"devices,omitempty"`
	Created   time.Time  `json:"created"`
	Snapshots []Snapshot `json:"snapshots,omitempty"`
	// Ephemeral instances are deleted when they stop.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Metadata and Templates come from the image, for the templates that
	// are rendered on copy and start, and for publish.
	Metadata  *ImageMetadata    `json:"metadata,omitempty"`
	Templates map[string]string `json:"templates,omitempty"`
	// NextSnap numbers the next default snapshot name (snapN).
	NextSnap int `json:"next_snap"`
	// ScheduledAt is the time of the background pass that last took (or,
	// while the instance was stopped, skipped) a scheduled snapshot.
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	// WasRunning says that the instance's last run ended unseen, as when
	// the host went down, rather than by a stop: boot.autostart unset
	// then starts it (LXD's volatile.last_state.power).
	WasRunning bool `json:"was_running,omitempty"`
	// Retired lists earlier heads that restores left in place for the
	// snapshots that live in them; each goes with its last snapshot.
	Retired []string `json:"retired,omitempty"`
	// Idmap is the host range allocated to an isolated instance
	// (security.idmap.isolated): no other instance's overlaps it.
	Idmap *Idmap `json:"idmap,omitempty"`
	// Shift is the map that the owners of the head's files are shifted
	// into on disk (nil: as the image has them), on a pool whose
	// filesystem cannot be idmapped.
	Shift *Shift `json:"shift,omitempty"`
	// Backups are the backup files kept of the instance, oldest first.
	Backups []Backup `json:"backups,omitempty"`
}

// Backup is a backup file of an instance that the host keeps for a
// client to download, as LXD's instance backups. Its file is named by
// its ID, so that renaming it or its instance touches no file.
type Backup struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Expires is when the background pass deletes it; zero for never.
	Expires      time.Time `json:"expires_at,omitzero"`
	InstanceOnly bool      `json:"instance_only,omitempty"`
	Optimized    bool      `json:"optimized,omitempty"`
	Compression  string    `json:"compression"`
	Size         int64     `json:"size"`
}

// Backup returns the backup called name.
func (i *Instance) Backup(name string) (*Backup, error) {
	for k := range i.Backups {
		if i.Backups[k].Name == name {
			return &i.Backups[k], nil
		}
	}
	return nil, errkind.Wrap(errkind.NotFound, "backup %q of instance %q not found", name, i.Name)
}

// Shift is a map whose host IDs a volume's files carry on disk: the
// IDs 0 to Size-1 inside are the host's UID to UID+Size-1, and GID to
// GID+Size-1.
type Shift struct {
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	Size uint32 `json:"size"`
}

// Key names the shift among an image's shifted bases on one pool.
func (s Shift) Key() string { return fmt.Sprintf("%d:%d:%d", s.UID, s.GID, s.Size) }

// Idmap is a range of host IDs: the instance's UIDs and GIDs 0 to Size-1
// are the host's Base to Base+Size-1.
type Idmap struct {
	Base uint32 `json:"base"`
	Size uint32 `json:"size"`
}

// SnapshotsIn counts the snapshots that live in volume vol.
func (i *Instance) SnapshotsIn(vol string) int {
	n := 0
	for _, s := range i.Snapshots {
		if s.Volume == vol {
			n++
		}
	}
	return n
}

// Snapshot is a point in time of an instance. It lives in the volume that
// was the instance's head when it was taken, which a restore may since have
// retired.
type Snapshot struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Volume  string    `json:"volume"`
	Created time.Time `json:"created"`
	// UUID names the point in time the snapshot holds, wherever it is
	// copied: a copy or an import keeps it, so that a refresh can tell
	// which snapshots both sides share. Older records have none and share
	// nothing.
	UUID string `json:"uuid,omitempty"`
	// Shift is the instance's shift when it was taken.
	Shift *Shift `json:"shift,omitempty"`
	// Expires is when the background pass deletes it; zero for never.
	Expires time.Time `json:"expires_at,omitzero"`
}

// Snapshot returns the snapshot called name.
func (i *Instance) Snapshot(name string) (*Snapshot, error) {
	return findSnapshot(i.Snapshots, name, "instance "+strconv.Quote(i.Name))
}

// findSnapshot returns the snapshot called name among snaps, which are
// owner's.
func findSnapshot(snaps []Snapshot, name, owner string) (*Snapshot, error) {
	for k := range snaps {
		if snaps[k].Name == name {
			return &snaps[k], nil
		}
	}
	return nil, errkind.Wrap(errkind.NotFound, "snapshot %q of %s not found", name, owner)
}

// Pool returns the pool called name.
func (t *Tx) Pool(name string) (*Pool, error) { return get[Pool](t, bucketPools, name, "pool") }

// PutPool writes p.
func (t *Tx) PutPool(p *Pool) error { return put(t, bucketPools, p.Name, p) }

// DeletePool removes the pool called name.
func (t *Tx) DeletePool(name string) error { return del(t, bucketPools, name, "pool") }

// Pools lists the pools by name.
func (t *Tx) Pools() ([]*Pool, error) { return all[Pool](t, bucketPools) }

// Image returns the image with the full fingerprint fp.
func (t *Tx) Image(fp string) (*Image, error) { return get[Image](t, bucketImages, fp, "image") }

// PutImage writes img and its aliases.
func (t *Tx) PutImage(img *Image) error {
	sort.Strings(img.Aliases)
	for _, a := range img.Aliases {
		if err := t.tx.Bucket(bucketAliases).Put([]byte(a), []byte(img.Fingerprint)); err != nil {
			return err
		}
	}
	return put(t, bucketImages, img.Fingerprint, img)
}

// DeleteImage removes the image and its aliases.
func (t *Tx) DeleteImage(img *Image) error {
	for _, a := range img.Aliases {
		if err := t.tx.Bucket(bucketAliases).Delete([]byte(a)); err != nil {
			return err
		}
	}
	return del(t, bucketImages, img.Fingerprint, "image")
}

// DeleteAlias removes alias from its image.
func (t *Tx) DeleteAlias(alias string) error {
	fp := t.tx.Bucket(bucketAliases).Get([]byte(alias))
	if fp == nil {
		return errkind.Wrap(errkind.NotFound, "alias %q not found", alias)
	}
	img, err := t.Image(string(fp))
	if err != nil {
		return err
	}
	kept := img.Aliases[:0]
	for _, a := range img.Aliases {
		if a != alias {
			kept = append(kept, a)
		}
	}
	img.Aliases = kept
	if err := t.tx.Bucket(bucketAliases).Delete([]byte(alias)); err != nil {
		return err
	}
	return t.PutImage(img)
}

// AliasTarget returns the fingerprint an alias names, or "".
func (t *Tx) AliasTarget(alias string) string {
	return string(t.tx.Bucket(bucketAliases).Get([]byte(alias)))
}

// Images lists the images by fingerprint.
func (t *Tx) Images() ([]*Image, error) { return all[Image](t, bucketImages) }

// FindImage resolves ref: an alias, a full fingerprint, or a unique prefix of one.
func (t *Tx) FindImage(ref string) (*Image, error) {
	if fp := t.AliasTarget(ref); fp != "" {
		return t.Image(fp)
	}
	if ref == "" {
		return nil, errkind.Wrap(errkind.Invalid, "empty image reference")
	}
	var found []byte
	c := t.tx.Bucket(bucketImages).Cursor()
	for k, _ := c.Seek([]byte(ref)); k != nil && len(k) >= len(ref) && string(k[:len(ref)]) == ref; k, _ = c.Next() {
		if found != nil {
			return nil, errkind.Wrap(errkind.Invalid, "image reference %q is ambiguous: give more of the fingerprint", ref)
		}
		found = append([]byte(nil), k...)
	}
	if found == nil {
		return nil, errkind.Wrap(errkind.NotFound, "image %q not found", ref)
	}
	return t.Image(string(found))
}

// Instance returns the instance called name.
func (t *Tx) Instance(name string) (*Instance, error) {
	return get[Instance](t, bucketInstances, name, "instance")
}

// Run is a boot of an instance: it exists while the instance runs.
type Run struct {
	Name string `json:"name"`
	// Pid and Start (ticks since boot) name init on the host for good;
	// with Boot, they tell a live run from one that died unseen.
	Pid     int       `json:"pid"`
	Start   uint64    `json:"start"`
	Boot    string    `json:"boot"`
	Started time.Time `json:"started"`
	Init    string    `json:"init"`    // its family: systemd, busybox, other
	Runtime string    `json:"runtime"` // the OCI runtime's executable
}

// Run returns the run of instance name, or nil when it is not running.
func (t *Tx) Run(name string) (*Run, error) {
	r, err := get[Run](t, bucketRunning, name, "run")
	if errors.Is(err, errkind.NotFound) {
		return nil, nil
	}
	return r, err
}

// PutRun records a run.
func (t *Tx) PutRun(r *Run) error { return put(t, bucketRunning, r.Name, r) }

// DeleteRun forgets the run of instance name.
func (t *Tx) DeleteRun(name string) error {
	return t.tx.Bucket(bucketRunning).Delete([]byte(name))
}

// Runs lists the runs by instance name.
func (t *Tx) Runs() ([]*Run, error) { return all[Run](t, bucketRunning) }

// HasInstance reports whether an instance is called name.
func (t *Tx) HasInstance(name string) bool { return has(t, bucketInstances, name) }

// PutInstance writes inst.
func (t *Tx) PutInstance(inst *Instance) error { return put(t, bucketInstances, inst.Name, inst) }

// DeleteInstance removes the instance called name.
func (t *Tx) DeleteInstance(name string) error { return del(t, bucketInstances, name, "instance") }

// Instances lists the instances by name.
func (t *Tx) Instances() ([]*Instance, error) { return all[Instance](t, bucketInstances) }
