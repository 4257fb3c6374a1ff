package api

import "time"

// The types of a REST response, as LXD's.
const (
	ResponseSync  = "sync"
	ResponseAsync = "async"
	ResponseError = "error"
)

// Response is the envelope of every answer of the REST API (LXD's
// Response): sync with its object in Metadata, async with the operation
// that carries the work out, or error.
type Response struct {
	// Type is sync, async or error.
	Type string `json:"type"`
	// Status and StatusCode are Success (200) for sync, Running (103)
	// for async; absent in an error.
	Status     string `json:"status,omitempty"`
	StatusCode int    `json:"status_code,omitempty"`
	// Operation is the path of an async response's operation.
	Operation string `json:"operation,omitempty"`
	// Error and ErrorCode say, in one line and as an HTTP status, why
	// the request failed.
	Error     string `json:"error,omitempty"`
	ErrorCode int    `json:"error_code,omitempty"`
	// Metadata is the object answered: an async response's is its
	// operation.
	Metadata any `json:"metadata"`
}

// Server is what GET /1.0 answers (LXD's Server, less what silo does not
// have: clustering, projects, images from remotes).
type Server struct {
	// APIExtensions lists the additions to /1.0 silo serves.
	APIExtensions []string `json:"api_extensions"`
	// APIStatus is "stable".
	APIStatus string `json:"api_status"`
	// APIVersion is "1.0".
	APIVersion string `json:"api_version"`
	// Auth is "trusted" when the client is, "untrusted" otherwise.
	Auth string `json:"auth"`
	// AuthMethods are the ways a client may be trusted: "tls".
	AuthMethods []string `json:"auth_methods"`
	// Public is false: silo serves only the clients it trusts.
	Public bool `json:"public"`
	// Config holds the server's keys (core.https_address...); absent
	// for an untrusted client.
	Config map[string]string `json:"config,omitempty"`
	// Environment describes the host; absent for an untrusted client.
	Environment *ServerEnvironment `json:"environment,omitempty"`
}

// ServerEnvironment describes the host a server runs on.
type ServerEnvironment struct {
	// Architectures are the host's, as LXD names them (x86_64).
	Architectures []string `json:"architectures"`
	// Kernel, KernelVersion and KernelArchitecture are uname's.
	Kernel             string `json:"kernel"`
	KernelArchitecture string `json:"kernel_architecture"`
	KernelVersion      string `json:"kernel_version"`
	// Server is "silo".
	Server string `json:"server"`
	// ServerName is the host's name.
	ServerName string `json:"server_name"`
	// ServerPid is the server's process.
	ServerPid int `json:"server_pid"`
	// Storage lists the drivers silo has: dir, btrfs, zfs.
	Storage []string `json:"storage"`
}

// InstancesPost makes an instance (LXD's InstancesPost, from an image).
type InstancesPost struct {
	// Name is the new instance's.
	Name string `json:"name"`
	// Source is where its root filesystem comes from.
	Source InstanceSource `json:"source"`
	// Profiles apply in order; absent, the default profile; empty, none.
	Profiles []string `json:"profiles"`
	// Config and Devices are the instance's own.
	Config  map[string]string            `json:"config"`
	Devices map[string]map[string]string `json:"devices"`
	// Ephemeral instances are deleted when they stop.
	Ephemeral bool `json:"ephemeral"`
	// Start starts the instance once made, as lxc launch does.
	Start bool `json:"start"`
	// Type is "container" or empty.
	Type string `json:"type,omitempty"`
}

// InstanceSource is the image an instance is made from: by alias or by
// fingerprint (or a prefix of one).
type InstanceSource struct {
	// Type is "image".
	Type        string `json:"type"`
	Alias       string `json:"alias,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// InstancePut is what PUT and PATCH of an instance write (LXD's
// InstancePut): its own config, devices, profiles and ephemeral flag; or,
// with Restore, a snapshot to bring it back to.
type InstancePut struct {
	Config    map[string]string            `json:"config,omitempty"`
	Devices   map[string]map[string]string `json:"devices,omitempty"`
	Profiles  []string                     `json:"profiles,omitempty"`
	Ephemeral *bool                        `json:"ephemeral,omitempty"`
	// Restore names a snapshot to restore: the rest is then ignored.
	Restore string `json:"restore,omitempty"`
}

// InstancePost renames an instance (LXD's InstancePost).
type InstancePost struct {
	Name string `json:"name"`
}

// InstanceStatePut starts, stops or restarts an instance (LXD's
// InstanceStatePut).
type InstanceStatePut struct {
	// Action is start, stop or restart, or silo's wait: the operation
	// ends once the running instance is ready (its init has booted), as
	// silo wait does.
	Action string `json:"action"`
	// Timeout is the seconds a stop waits for init before it kills, or
	// a wait for the instance to be ready; 0 or less: silo's default.
	Timeout int `json:"timeout"`
	// Force kills at once.
	Force bool `json:"force"`
}

// InstanceSnapshotsPost takes a snapshot (LXD's InstanceSnapshotsPost).
type InstanceSnapshotsPost struct {
	// Name is the snapshot's; empty, the next free snapN.
	Name string `json:"name"`
	// ExpiresAt is when it is deleted: absent, by snapshots.expiry; the
	// zero time, never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// InstanceBackupsPost makes a backup of an instance (LXD's
// InstanceBackupsPost).
type InstanceBackupsPost struct {
	// Name is the backup's; empty, the first free backupN.
	Name string `json:"name"`
	// ExpiresAt is when the server deletes it; the zero time, never.
	ExpiresAt time.Time `json:"expires_at"`
	// InstanceOnly leaves the snapshots out.
	InstanceOnly bool `json:"instance_only"`
	// OptimizedStorage writes the storage driver's own streams.
	OptimizedStorage bool `json:"optimized_storage"`
	// CompressionAlgorithm is zstd (when empty), gzip, xz or none.
	CompressionAlgorithm string `json:"compression_algorithm"`
}

// InstanceBackupPost renames a backup (LXD's InstanceBackupPost).
type InstanceBackupPost struct {
	Name string `json:"name"`
}

// ProfilesPost makes a profile (LXD's ProfilesPost).
type ProfilesPost struct {
	Name        string                       `json:"name"`
	Description string                       `json:"description,omitempty"`
	Config      map[string]string            `json:"config,omitempty"`
	Devices     map[string]map[string]string `json:"devices,omitempty"`
}

// ProfilePost renames a profile, in every instance that applies it
// (LXD's ProfilePost).
type ProfilePost struct {
	Name string `json:"name"`
}

// ProfilePut is what PUT and PATCH of a profile write (LXD's ProfilePut).
type ProfilePut struct {
	Description string                       `json:"description,omitempty"`
	Config      map[string]string            `json:"config,omitempty"`
	Devices     map[string]map[string]string `json:"devices,omitempty"`
}

// StorageVolumesPost makes a custom volume (LXD's StorageVolumesPost).
type StorageVolumesPost struct {
	Name string `json:"name"`
	// Type is "custom" or empty.
	Type string `json:"type,omitempty"`
	// Config holds size and user.* keys.
	Config map[string]string `json:"config,omitempty"`
}

// StorageVolumePut is what PUT and PATCH of a custom volume write (LXD's
// StorageVolumePut): its description and config; or, with Restore, a
// snapshot to bring it back to.
type StorageVolumePut struct {
	Description string `json:"description,omitempty"`
	// Config holds size and user.* keys.
	Config map[string]string `json:"config,omitempty"`
	// Restore names a snapshot to restore: the rest is then ignored.
	Restore string `json:"restore,omitempty"`
}

// StorageVolumePost renames a custom volume within its pool (LXD's
// StorageVolumePost).
type StorageVolumePost struct {
	Name string `json:"name"`
}

// StorageVolumeSnapshotsPost takes a snapshot of a custom volume (LXD's
// StorageVolumeSnapshotsPost).
type StorageVolumeSnapshotsPost struct {
	// Name is the snapshot's; empty, by snapshots.pattern or the next
	// free snapN.
	Name string `json:"name"`
	// ExpiresAt is when it is deleted: absent, by snapshots.expiry; the
	// zero time, never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// NetworkPut is what PUT and PATCH of a network write (LXD's NetworkPut,
// without a description: silo's networks have none).
type NetworkPut struct {
	Config map[string]string `json:"config,omitempty"`
}

// NetworksPost makes a managed bridge (LXD's NetworksPost).
type NetworksPost struct {
	Name string `json:"name"`
	// Type is "bridge" or empty.
	Type string `json:"type,omitempty"`
	// Config holds ipv4.address, ipv4.nat, ipv6.address, ipv6.nat and
	// dns.domain.
	Config map[string]string `json:"config,omitempty"`
}
