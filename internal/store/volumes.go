package store

import (
	"bytes"
	"fmt"
	"time"

	"github.com/silo-dev/silo/errkind"
)

// CustomVolume is a volume of its own on a pool, apart from any instance's
// root: data that outlives instances and moves between them.
type CustomVolume struct {
	Pool   string `json:"pool"`
	Name   string `json:"name"`
	Volume string `json:"volume"` // ID of its current head on disk
	// Config holds size=, user.* and description.
	Config    map[string]string `json:"config,omitempty"`
	Created   time.Time         `json:"created"`
	Snapshots []Snapshot        `json:"snapshots,omitempty"`
	// NextSnap numbers the next default snapshot name (snapN).
	NextSnap int `json:"next_snap"`
	// ScheduledAt is the time of the background pass that last took a
	// scheduled snapshot.
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	// Retired lists earlier heads that restores left in place for the
	// snapshots that live in them, as an instance's do.
	Retired []string `json:"retired,omitempty"`
}

// Snapshot returns the snapshot called name.
func (v *CustomVolume) Snapshot(name string) (*Snapshot, error) {
	return findSnapshot(v.Snapshots, name, fmt.Sprintf("volume %q in pool %q", v.Name, v.Pool))
}

// Names never hold a slash, so pool/name keys sort a pool's volumes
// together and a prefix scan lists them.
func volumeKey(pool, name string) string { return pool + "/" + name }

// CustomVolume returns the custom volume called name on pool.
func (t *Tx) CustomVolume(pool, name string) (*CustomVolume, error) {
	data := t.tx.Bucket(bucketVolumes).Get([]byte(volumeKey(pool, name)))
	if data == nil {
		return nil, errkind.Wrap(errkind.NotFound, "volume %q not found in pool %q", name, pool)
	}
	return decode[CustomVolume](data, "volume", volumeKey(pool, name))
}

// HasCustomVolume reports whether pool holds a custom volume called name.
func (t *Tx) HasCustomVolume(pool, name string) bool {
	return has(t, bucketVolumes, volumeKey(pool, name))
}

// PutCustomVolume writes v.
func (t *Tx) PutCustomVolume(v *CustomVolume) error {
	return put(t, bucketVolumes, volumeKey(v.Pool, v.Name), v)
}

// DeleteCustomVolume removes the custom volume called name from pool.
func (t *Tx) DeleteCustomVolume(pool, name string) error {
	if !t.HasCustomVolume(pool, name) {
		return errkind.Wrap(errkind.NotFound, "volume %q not found in pool %q", name, pool)
	}
	return t.tx.Bucket(bucketVolumes).Delete([]byte(volumeKey(pool, name)))
}

// CustomVolumes lists the custom volumes of pool ("" for every pool), by
// pool and then name.
func (t *Tx) CustomVolumes(pool string) ([]CustomVolume, error) {
	var prefix []byte
	if pool != "" {
		prefix = []byte(volumeKey(pool, ""))
	}
	var out []CustomVolume
	c := t.tx.Bucket(bucketVolumes).Cursor()
	for k, data := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, data = c.Next() {
		v, err := decode[CustomVolume](data, "volume", string(k))
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}
