package engine

import (
	"net/url"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/internal/store"
)

// Every change is logged as a lifecycle event in the transaction that
// makes it, so that a server sees what the CLI does, and a crash logs
// neither the change nor its event.

// Events is the bus of the state directory's events: the lifecycle events
// that every silo process logs, and the events this process publishes.
func (e *Engine) Events() *events.Bus { return e.events }

// instanceEvent logs action on instance name.
func instanceEvent(tx *store.Tx, action, name string, context map[string]any) error {
	return events.Record(tx, action, api.Path("instances", name), context)
}

// snapshotEvent logs action on snapshot snap of instance name.
func snapshotEvent(tx *store.Tx, action, name, snap string) error {
	return events.Record(tx, action, api.Path("instances", name)+"/snapshots/"+url.PathEscape(snap), nil)
}

// volumeEvent logs action on custom volume name of pool, or on its
// snapshot snap when snap is not empty.
func volumeEvent(tx *store.Tx, action, pool, name, snap string, context map[string]any) error {
	src := api.Path("storage-pools", pool) + "/volumes/" + api.VolumeTypeCustom + "/" + url.PathEscape(name)
	if snap != "" {
		src += "/snapshots/" + url.PathEscape(snap)
	}
	return events.Record(tx, action, src, context)
}

// objectEvent logs action on the object name of collection: images,
// storage-pools, networks, profiles.
func objectEvent(tx *store.Tx, action, collection, name string) error {
	return events.Record(tx, action, api.Path(collection, name), nil)
}
