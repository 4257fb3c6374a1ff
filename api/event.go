package api

import (
	"encoding/json"
	"time"
)

// The types of event, as LXD's /1.0/events names them.
const (
	EventTypeLifecycle = "lifecycle" // something was made, changed, started...
	EventTypeOperation = "operation" // an operation's state changed
	EventTypeLogging   = "logging"   // a record of the log
)

// EventTypes are every type of event, in LXD's order.
var EventTypes = []string{EventTypeLogging, EventTypeOperation, EventTypeLifecycle}

// Event is one event of /1.0/events and `silo monitor`.
type Event struct {
	// Type is lifecycle, operation or logging.
	Type string `json:"type"`
	// Timestamp is when it happened.
	Timestamp time.Time `json:"timestamp"`
	// Metadata is an EventLifecycle, an Operation or an EventLogging,
	// by Type.
	Metadata json.RawMessage `json:"metadata"`
	// Location is the host, "none" as on an LXD that is not clustered.
	Location string `json:"location"`
	// Project is the project of the object the event is about: "default"
	// for lifecycle and operation events, as silo has no other; none for
	// logging events, which are the host's.
	Project string `json:"project,omitempty"`
}

// LocationNone is the location of every event: silo has no cluster.
const LocationNone = "none"

// ProjectDefault is the project of every object: silo has no others.
const ProjectDefault = "default"

// EventLifecycle is the metadata of a lifecycle event.
type EventLifecycle struct {
	// Action is what happened, such as instance-started.
	Action string `json:"action"`
	// Source is the path of the object it happened to.
	Source string `json:"source"`
	// Context holds details, such as the old name of a renamed instance.
	Context map[string]any `json:"context,omitempty"`
	// Name is the object's name (its last path element, unescaped).
	Name string `json:"name,omitempty"`
}

// EventLogging is the metadata of a logging event.
type EventLogging struct {
	Message string            `json:"message"`
	Level   string            `json:"level"` // debug, info, warning or error
	Context map[string]string `json:"context"`
}

// The lifecycle actions silo emits, named as LXD's are.
const (
	ActionInstanceCreated         = "instance-created"
	ActionInstanceDeleted         = "instance-deleted"
	ActionInstanceRenamed         = "instance-renamed"
	ActionInstanceUpdated         = "instance-updated"
	ActionInstanceStarted         = "instance-started"
	ActionInstanceStopped         = "instance-stopped"
	ActionInstanceShutdown        = "instance-shutdown"
	ActionInstanceRestarted       = "instance-restarted"
	ActionInstanceRestored        = "instance-restored"
	ActionInstanceSnapshotCreated = "instance-snapshot-created"
	ActionInstanceSnapshotDeleted = "instance-snapshot-deleted"
	ActionInstanceBackupCreated   = "instance-backup-created"
	ActionInstanceBackupDeleted   = "instance-backup-deleted"
	ActionInstanceBackupRenamed   = "instance-backup-renamed"
	ActionImageCreated            = "image-created"
	ActionImageDeleted            = "image-deleted"
	ActionImageAliasCreated       = "image-alias-created"
	ActionImageAliasDeleted       = "image-alias-deleted"
	ActionImageAliasRenamed       = "image-alias-renamed"
	ActionStoragePoolCreated      = "storage-pool-created"
	ActionStoragePoolDeleted      = "storage-pool-deleted"
	ActionVolumeCreated           = "storage-volume-created"
	ActionVolumeDeleted           = "storage-volume-deleted"
	ActionVolumeUpdated           = "storage-volume-updated"
	ActionVolumeRenamed           = "storage-volume-renamed"
	ActionVolumeRestored          = "storage-volume-restored"
	ActionVolumeSnapshotCreated   = "storage-volume-snapshot-created"
	ActionVolumeSnapshotDeleted   = "storage-volume-snapshot-deleted"
	ActionNetworkCreated          = "network-created"
	ActionNetworkDeleted          = "network-deleted"
	ActionNetworkUpdated          = "network-updated"
	ActionProfileCreated          = "profile-created"
	ActionProfileDeleted          = "profile-deleted"
	ActionProfileUpdated          = "profile-updated"
	ActionProfileRenamed          = "profile-renamed"
)
