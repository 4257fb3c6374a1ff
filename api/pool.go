package api

import "time"

// PoolCreated is the status of every pool silo lists: a pool is recorded
// only once its storage exists.
const PoolCreated = "Created"

// StoragePool is a named place where volumes live, served by one driver
// (LXD's StoragePool, less descriptions and cluster locations).
type StoragePool struct {
	// Name is the pool's name.
	Name string `json:"name"`
	// Driver is dir, btrfs or zfs.
	Driver string `json:"driver"`
	// Config says where the pool is: source, the directory, btrfs mount
	// or zpool/dataset it was made on; size, the size of the loop file
	// silo made for it (as in 20GiB). Neither is set for the default
	// pool under the state directory.
	Config map[string]string `json:"config"`
	// Status is "Created".
	Status string `json:"status"`
	// UsedBy lists the paths of the instances on the pool, then of the
	// images that have a base volume there, each by name, then of its
	// custom volumes.
	UsedBy []string `json:"used_by"`
	// CreatedAt is when the pool was made.
	CreatedAt time.Time `json:"created_at"`
}
