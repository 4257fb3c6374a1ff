package api

import (
	"net/url"
	"time"
)

// VolumeTypeCustom is the type of every volume silo lists: a custom
// volume, apart from any instance's root.
const VolumeTypeCustom = "custom"

// ContentFilesystem is the content type of every custom volume silo makes.
const ContentFilesystem = "filesystem"

// VolumePath is the address of custom volume name on pool, as LXD's
// /1.0/storage-pools/POOL/volumes/custom/NAME.
func VolumePath(pool, name string) string {
	return Path("storage-pools", pool) + "/volumes/" + VolumeTypeCustom + "/" + url.PathEscape(name)
}

// VolumeSnapshotPath is the address of snapshot snap of custom volume
// name on pool.
func VolumeSnapshotPath(pool, name, snap string) string {
	return VolumePath(pool, name) + "/snapshots/" + url.PathEscape(snap)
}

// StorageVolume is a custom volume on a pool (LXD's StorageVolume, with
// its state and snapshots, as silo's instances carry theirs).
type StorageVolume struct {
	// Name is the volume's name, unique within its pool.
	Name string `json:"name"`
	// Pool is the pool it lives on.
	Pool string `json:"pool"`
	// Type is "custom".
	Type string `json:"type"`
	// ContentType is "filesystem".
	ContentType string `json:"content_type"`
	// Description is what people wrote of it.
	Description string `json:"description"`
	// Config holds size (a cap, as in 10GiB) and user.* keys.
	Config map[string]string `json:"config"`
	// UsedBy lists the paths of the instances whose devices, their own
	// or their profiles', attach the volume, then of those profiles.
	UsedBy []string `json:"used_by"`
	// CreatedAt is when the volume was made.
	CreatedAt time.Time `json:"created_at"`
	// State is what the volume holds now; set by info, not by list.
	State *StorageVolumeState `json:"state,omitempty"`
	// Snapshots are the volume's snapshots, oldest first.
	Snapshots []StorageVolumeSnapshot `json:"snapshots"`
}

// StorageVolumeState is what a volume holds (LXD's StorageVolumeState).
type StorageVolumeState struct {
	Usage StorageVolumeStateUsage `json:"usage"`
}

// StorageVolumeStateUsage is a volume's use of its pool.
type StorageVolumeStateUsage struct {
	// Used is the bytes the volume holds, as its driver counts them.
	Used int64 `json:"used"`
	// Total is its cap in bytes; 0 when it has none.
	Total int64 `json:"total"`
}

// StorageVolumeSnapshot is a point in time of a custom volume, which it
// can be restored to (LXD's StorageVolumeSnapshot).
type StorageVolumeSnapshot struct {
	// Name is the snapshot's name, unique within its volume.
	Name string `json:"name"`
	// CreatedAt is when the snapshot was taken.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the snapshot is deleted; the zero time for never.
	ExpiresAt time.Time `json:"expires_at"`
}
