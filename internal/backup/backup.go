// Package backup writes and reads instance backups: one compressed tar
// stream that holds an instance's config, its snapshots and its root, and
// that is written and read in one pass, never staged on disk.
//
// The stream's entries, in this order:
//
//	index.json              the Index: config, snapshots, and the form
//	snapshots/NAME/...      portable form: each snapshot's tree, oldest first
//	rootfs/...              portable form: the instance's root
//	streams/K/NNNNNN        optimized form: chunks of driver stream K
//
// In the portable form the first snapshot is a whole tree; each later tree
// holds only what differs from the one before it, with a deleted path NAME
// marked by an empty file ".wh.NAME" beside it (OCI whiteouts). Such a
// stream can be unpacked on any driver. A refresh's stream names in its
// index a snapshot that its receiver holds already (Base): its first tree,
// too, is the difference from that one.
//
// The optimized form holds the storage driver's own send streams (btrfs
// send, zfs send), each incremental against the previous snapshot where it
// can be; only a pool of the same driver can receive them. A stream's
// chunks are written as they are read, so its size need not be known first.
//
// A custom volume's backup is the same stream, in either form, with
// "type": "custom" in its index: the index's name and config are the
// volume's, the snapshots are the volume's, and rootfs/ (or the last
// stream) holds the volume's tree. Its files keep the IDs they have on
// disk. An instance's backup has no type.
package backup

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/silo-dev/silo/errkind"
)

// Format is the version of the layout this package writes.
const Format = 1

// TypeCustom is the Index.Type of a custom volume's backup.
const TypeCustom = "custom"

const (
	indexName    = "index.json"
	snapshotsDir = "snapshots"
	rootfsDir    = "rootfs"
	streamsDir   = "streams"
	// chunkSize bounds a stream's chunk, which is held in memory once.
	chunkSize = 4 << 20
	// maxIndex bounds the index, which is read whole.
	maxIndex = 16 << 20
)

// Index describes the backup; it is the stream's first entry.
type Index struct {
	Format int `json:"format"`
	// Type is empty for an instance's backup, and "custom" for a custom
	// volume's, whose Config is the volume's and whose root is the
	// volume's tree.
	Type      string            `json:"type,omitempty"`
	Name      string            `json:"name"`
	Created   time.Time         `json:"created"`
	Image     string            `json:"image,omitempty"` // fingerprint it was created from
	Config    map[string]string `json:"config,omitempty"`
	Snapshots []Snapshot        `json:"snapshots,omitempty"`
	// Extra carries what the engine keeps with an instance beyond the
	// above (image metadata and templates), opaque to this package.
	Extra json.RawMessage `json:"extra,omitempty"`
	// Optimized names the driver whose streams the backup holds; empty for
	// the portable form.
	Optimized string   `json:"optimized,omitempty"`
	Streams   []Stream `json:"streams,omitempty"`
	// Base is the UUID of the snapshot that the first tree is the
	// difference from, which the receiver holds: a refresh's stream,
	// which lists only the snapshots the receiver lacks. Empty in a
	// backup, whose first tree is whole.
	Base string `json:"base,omitempty"`
	// BaseStream is, in a refresh's driver streams (Base and Optimized
	// set), the driver's stream ID of the base: the first stream is
	// incremental against it, each other against the one before, and the
	// receiver's copy of the base must have that ID.
	BaseStream string `json:"base_stream,omitempty"`
}

// Snapshot is one snapshot in the backup.
type Snapshot struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// UUID names the point in time the snapshot holds; an import keeps it.
	UUID string `json:"uuid,omitempty"`
	// Expires is when it is to be deleted; zero for never, and in
	// backups written before snapshots expired.
	Expires time.Time `json:"expires_at,omitzero"`
}

// Stream is one driver stream of the optimized form, in the order written.
type Stream struct {
	// Snapshot is the snapshot the stream holds, or empty for the root.
	Snapshot string `json:"snapshot,omitempty"`
	// Parent is the earlier snapshot the stream is incremental against,
	// or empty for a whole volume (for the first of a refresh's streams:
	// the base).
	Parent string `json:"parent,omitempty"`
}

// Parts lists the trees of the portable form in the order they come.
func (x *Index) Parts() []string {
	parts := make([]string, 0, len(x.Snapshots)+1)
	for _, s := range x.Snapshots {
		parts = append(parts, snapshotsDir+"/"+s.Name)
	}
	return append(parts, rootfsDir)
}

// check refuses an index that this package cannot read, or one whose
// names could not be used as paths.
func (x *Index) check() error {
	if x.Format != Format {
		return invalid("backup format %d is not supported (this silo reads format %d)", x.Format, Format)
	}
	if x.Type != "" && x.Type != TypeCustom {
		return invalid("the backup holds a %q, which this silo does not know", x.Type)
	}
	if x.Name == "" {
		return invalid("the backup's index names no instance or volume")
	}
	seen := map[string]bool{}
	for _, s := range x.Snapshots {
		if !plainName(s.Name) || seen[s.Name] {
			return invalid("the backup's index lists an invalid or repeated snapshot %q", s.Name)
		}
		seen[s.Name] = true
	}
	if x.Base != "" && x.Optimized != "" {
		if x.BaseStream == "" {
			return invalid("the backup's index names a base snapshot for driver streams, but not its stream ID")
		}
		for i, s := range x.Streams {
			if i == 0 && s.Parent != "" || i > 0 && s.Parent != x.Streams[i-1].Snapshot {
				return invalid("stream %d of the refresh is not incremental against the one before it", i)
			}
		}
	}
	if x.Optimized == "" {
		if len(x.Streams) > 0 {
			return invalid("the backup's index lists streams but names no driver")
		}
		return nil
	}
	if len(x.Streams) == 0 {
		return invalid("the optimized backup's index lists no stream")
	}
	sent := map[string]bool{}
	for i, s := range x.Streams {
		if s.Snapshot != "" && (!seen[s.Snapshot] || sent[s.Snapshot]) || s.Parent != "" && !sent[s.Parent] {
			return invalid("stream %d of the backup names a snapshot the index does not list, or not before it", i)
		}
		sent[s.Snapshot] = true
		if s.Snapshot == "" && i != len(x.Streams)-1 {
			return invalid("stream %d of the backup holds the root, which must come last", i)
		}
	}
	if x.Streams[len(x.Streams)-1].Snapshot != "" {
		return invalid("the optimized backup holds no root")
	}
	return nil
}

// plainName accepts a name that is one path component.
func plainName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for _, c := range []byte(s) {
		if c == '/' || c == 0 {
			return false
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return errkind.Wrap(errkind.Invalid, format, args...)
}

func streamDir(k int) string { return fmt.Sprintf("%s/%d", streamsDir, k) }
