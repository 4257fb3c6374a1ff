package store

import "time"

// VolumeRef names a volume, or one of its snapshots, on a pool.
type VolumeRef struct {
	Pool     string `json:"pool"`
	Volume   string `json:"volume"`
	Snapshot string `json:"snapshot,omitempty"`
}

// Cleanup is what an operation removes at one of its ends.
type Cleanup struct {
	// Forks are volumes that took over the older snapshots of others
	// (ZFS's promote): each gives them back before the volumes go.
	Forks []Fork `json:"forks,omitempty"`
	// Volumes and snapshots, removed last-listed first.
	Volumes []VolumeRef `json:"volumes,omitempty"`
	Files   []string    `json:"files,omitempty"`
	// Networks are managed networks whose every trace on the host goes.
	Networks []NetworkRef `json:"networks,omitempty"`
	// Devices are devices of running instances that the operation plugs or
	// unplugs live. Each is taken out of its instance as the records have
	// it before Restore, and plugged again as they have it after, so that
	// the instance has it as its records say, whatever step the operation
	// was at.
	Devices []DeviceRef `json:"devices,omitempty"`
	// Quotas are instances whose root volume the operation gives another
	// cap: after Restore, each gets the cap its records say.
	Quotas []string `json:"quotas,omitempty"`
	// Restore puts records back as they were before the operation.
	Restore *Restore `json:"restore,omitempty"`
	// Pool is destroyed, after the volumes.
	Pool *Pool `json:"pool,omitempty"`
}

// Restore holds records as they were.
type Restore struct {
	Instances []*Instance `json:"instances,omitempty"`
	Profile   *Profile    `json:"profile,omitempty"`
	// Volumes are custom volumes, each of which gets again the cap its
	// record says.
	Volumes []*CustomVolume `json:"volumes,omitempty"`
}

// Fork names a volume, on a pool, that took over snapshots of volume From.
type Fork struct {
	Pool   string `json:"pool"`
	Volume string `json:"volume"`
	From   string `json:"from"`
}

// DeviceRef names a device of an instance.
type DeviceRef struct {
	Instance string `json:"instance"`
	Device   string `json:"device"`
}

// NetworkRef names what a managed network has on the host.
type NetworkRef struct {
	Bridge string `json:"bridge"`
	Dir    string `json:"dir"` // its dnsmasq's files
}

// Op is a multi-step operation in flight. It is written before the first
// step touches storage, so that if its command dies, the next command can
// finish it (Committed) or undo it (not Committed).
type Op struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`   // create, copy, snapshot, restore...
	Target  string    `json:"target"` // what it acts on, for messages
	Started time.Time `json:"started"`
	// Reserved holds names that no other command may take meanwhile
	// (see Reservation).
	Reserved []string `json:"reserved,omitempty"`
	// Undo is what the operation makes: removed if it is rolled back.
	// Everything is listed up front; what was not made yet is skipped.
	Undo Cleanup `json:"undo"`
	// Retire is what the operation does away with: removed once it is committed.
	Retire Cleanup `json:"retire"`
	// Committed is set in the same transaction as the records the
	// operation changes: from then on it is rolled forward, never back.
	Committed bool `json:"committed,omitempty"`
}

// Reservation is the key under which an Op holds a name: kind is "instance",
// "snapshot", "alias" or "image".
func Reservation(kind string, names ...string) string {
	key := kind
	for _, n := range names {
		key += "/" + n
	}
	return key
}

// Op returns the operation with id.
func (t *Tx) Op(id string) (*Op, error) { return get[Op](t, bucketOps, id, "operation") }

// PutOp writes op.
func (t *Tx) PutOp(op *Op) error { return put(t, bucketOps, op.ID, op) }

// DeleteOp removes the operation with id.
func (t *Tx) DeleteOp(id string) error { return del(t, bucketOps, id, "operation") }

// Ops lists the operations in flight.
func (t *Tx) Ops() ([]*Op, error) { return all[Op](t, bucketOps) }

// Reserved reports whether an operation in flight holds key.
func (t *Tx) Reserved(key string) (bool, error) {
	ops, err := t.Ops()
	if err != nil {
		return false, err
	}
	for _, op := range ops {
		for _, r := range op.Reserved {
			if r == key {
				return true, nil
			}
		}
	}
	return false, nil
}
