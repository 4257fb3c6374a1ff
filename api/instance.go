package api

import "time"

// TypeContainer is the type of every instance and image silo makes: silo
// runs system containers, never virtual machines.
const TypeContainer = "container"

// Instance is a system container, with its state and its snapshots (LXD's
// InstanceFull, less what silo does not have: backups, descriptions, the
// time of last use, cluster locations).
type Instance struct {
	// Name is the instance's name, unique on the host.
	Name string `json:"name"`
	// Type is always "container".
	Type string `json:"type"`
	// Status is "Running" or "Stopped".
	Status string `json:"status"`
	// StatusCode is Status as a number: 103 running, 102 stopped.
	StatusCode StatusCode `json:"status_code"`
	// Architecture is the instance's, as LXD names it (x86_64, aarch64):
	// its image's, or the host's for an image that names none.
	Architecture string `json:"architecture"`
	// Image is the fingerprint of the image the instance was made from.
	Image string `json:"image"`
	// Config holds the instance's keys (limits.*, runtime, init,
	// security.*, environment.*, user.*); empty, never null, when none
	// is set.
	Config map[string]string `json:"config"`
	// Devices maps a device's name to its type and settings: the
	// instance's own, which override its profiles' devices of the same
	// name.
	Devices map[string]map[string]string `json:"devices"`
	// Profiles are applied in order, before the instance's own config
	// and devices.
	Profiles []string `json:"profiles"`
	// ExpandedConfig is the config in effect: the profiles', then the
	// instance's own, including the volatile.* keys silo records
	// (volatile.eth0.hwaddr...).
	ExpandedConfig map[string]string `json:"expanded_config"`
	// ExpandedDevices are the devices in effect. The root filesystem is
	// the disk device at path /, whose pool key names the pool the
	// instance lives on.
	ExpandedDevices map[string]map[string]string `json:"expanded_devices"`
	// Ephemeral instances are deleted when they stop.
	Ephemeral bool `json:"ephemeral"`
	// CreatedAt is when the instance was made (for an imported backup,
	// when its source was).
	CreatedAt time.Time `json:"created_at"`
	// State is what the instance is doing now.
	State *InstanceState `json:"state"`
	// Snapshots are the instance's snapshots, oldest first.
	Snapshots []InstanceSnapshot `json:"snapshots"`
	// Privileged says the instance runs without a user namespace
	// (security.privileged=true): its root is the host's root.
	Privileged bool `json:"privileged"`
	// Idmap maps the IDs inside an unprivileged instance onto the host's,
	// as LXD's volatile.idmap.current does: one entry for UIDs, one for
	// GIDs; empty, never null, when privileged. A running instance's is
	// read from the kernel; a stopped one's is the map it boots under.
	Idmap []IdmapEntry `json:"idmap"`
}

// IdmapEntry maps Range IDs from NSID inside an instance onto the host's
// from HostID, for UIDs or GIDs (LXD's IdmapEntry).
type IdmapEntry struct {
	IsUID  bool  `json:"isuid"`
	IsGID  bool  `json:"isgid"`
	HostID int64 `json:"hostid"`
	NSID   int64 `json:"nsid"`
	Range  int64 `json:"maprange"`
}

// RootDevice is the name of the disk device an instance's root filesystem
// is, in the default profile.
const RootDevice = "root"

// Pool is the pool the instance's root filesystem lives on.
func (i *Instance) Pool() string {
	for _, d := range i.ExpandedDevices {
		if d["type"] == "disk" && d["path"] == "/" {
			return d["pool"]
		}
	}
	return ""
}

// InstanceState is what an instance is doing now (LXD's InstanceState,
// less CPU figures, which silo does not gather).
type InstanceState struct {
	// Status is "Running" or "Stopped", as in Instance.
	Status string `json:"status"`
	// StatusCode is Status as a number, as in Instance.
	StatusCode StatusCode `json:"status_code"`
	// Pid is the host PID of the instance's init; 0 when stopped.
	Pid int64 `json:"pid"`
	// Processes counts the processes in the instance; 0 when stopped,
	// -1 when the host's cgroups do not count them.
	Processes int64 `json:"processes"`
	// Memory is the memory the instance uses.
	Memory InstanceStateMemory `json:"memory"`
	// Disk maps a disk device to its usage: the root, when one instance
	// is asked for (info; list leaves it out, as it costs a walk of
	// every tree on dir pools).
	Disk map[string]InstanceStateDisk `json:"disk,omitempty"`
	// Network maps each nic, by its name inside, to its addresses and
	// counters: the addresses silo gave it, and, while it runs, the
	// traffic the kernel counts.
	Network map[string]InstanceStateNetwork `json:"network,omitempty"`
	// StartedAt is when the instance's init started; absent when stopped.
	StartedAt time.Time `json:"started_at,omitzero"`
}

// InstanceStateNetwork is a nic of an instance (LXD's
// InstanceStateNetwork).
type InstanceStateNetwork struct {
	// Addresses are the nic's addresses.
	Addresses []InstanceStateNetworkAddress `json:"addresses"`
	// Counters are the bytes and packets through it since it came up.
	Counters InstanceStateNetworkCounters `json:"counters"`
	// Hwaddr is its MAC address.
	Hwaddr string `json:"hwaddr"`
	// HostName is the host side's name, for a bridged nic.
	HostName string `json:"host_name,omitempty"`
	// State is "up" or "down".
	State string `json:"state"`
	// Type is "broadcast" for an ethernet nic.
	Type string `json:"type"`
}

// InstanceStateNetworkAddress is one address of a nic.
type InstanceStateNetworkAddress struct {
	// Family is "inet" or "inet6".
	Family string `json:"family"`
	// Address is the address, without its prefix length.
	Address string `json:"address"`
	// Netmask is the prefix length, in decimal.
	Netmask string `json:"netmask"`
	// Scope is "global" or "link".
	Scope string `json:"scope"`
}

// InstanceStateNetworkCounters are the traffic through a nic, as the
// instance sees it.
type InstanceStateNetworkCounters struct {
	BytesReceived int64 `json:"bytes_received"`
	BytesSent     int64 `json:"bytes_sent"`
}

// InstanceStateMemory is the memory an instance uses.
type InstanceStateMemory struct {
	// Usage is the bytes its cgroup charges: 0 when stopped.
	Usage int64 `json:"usage"`
}

// InstanceStateDisk is what a disk device holds.
type InstanceStateDisk struct {
	// Usage is the bytes the device's volume takes.
	Usage int64 `json:"usage"`
	// Total is the cap on the volume's size (size=), 0 when it has none.
	Total int64 `json:"total"`
}

// InstanceSnapshot is a point in time of an instance, which it can be
// restored to or copied from.
type InstanceSnapshot struct {
	// Name is the snapshot's name, unique within its instance.
	Name string `json:"name"`
	// CreatedAt is when the snapshot was taken.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the snapshot is deleted; the zero time for never,
	// as LXD has it.
	ExpiresAt time.Time `json:"expires_at"`
	// UUID names the point in time the snapshot holds; copies keep it,
	// and a refresh between hosts finds by it the snapshots both hold.
	UUID string `json:"uuid,omitempty"`
	// StreamID is the storage driver's name for that point in time, in
	// the answer to a GET of the one snapshot, on a driver whose streams
	// name one: a refresh from another host sends the driver's
	// incremental streams onto it only when the source's has the same.
	StreamID string `json:"stream_id,omitempty"`
}

// InstanceBackup is a backup file of an instance that the server keeps,
// for a client to download (LXD's InstanceBackup).
type InstanceBackup struct {
	// Name is the backup's, unique within its instance.
	Name string `json:"name"`
	// CreatedAt is when it was made.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the server deletes it; the zero time for never.
	ExpiresAt time.Time `json:"expires_at"`
	// InstanceOnly says that it leaves the snapshots out.
	InstanceOnly bool `json:"instance_only"`
	// OptimizedStorage says that it holds the storage driver's own
	// streams, which only a pool of the same driver imports.
	OptimizedStorage bool `json:"optimized_storage"`
	// CompressionAlgorithm is its file's: zstd, zstd-fast, gzip, xz or none.
	CompressionAlgorithm string `json:"compression_algorithm,omitempty"`
	// Size is its file's, in bytes.
	Size int64 `json:"size,omitempty"`
}
