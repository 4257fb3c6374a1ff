package snapshot

import (
	"slices"

	"github.com/silo-dev/silo/errkind"
)

// Send is one stream of an optimized backup, as the exporter sends it.
type Send struct {
	Snapshot string // the snapshot it holds, by name; empty for the head
	Volume   string // the volume it is read from
	ID       string // the snapshot's ID in Volume; empty for the head
	// Parent and ParentID name the snapshot, in the same volume, that the
	// stream holds the difference from; empty for a whole volume.
	Parent, ParentID string
}

// Chain plans the streams of an optimized backup of snaps (oldest first)
// and the head: a stream per snapshot, then the head's. Each is
// incremental against the stream before it where both live in one volume,
// and whole where a restore started a new volume between them.
func Chain(snaps []Snapshot, head string) []Send {
	sends := make([]Send, 0, len(snaps)+1)
	var last *Snapshot
	add := func(s Send) {
		if last != nil && last.Volume == s.Volume {
			s.Parent, s.ParentID = last.Name, last.ID
		}
		sends = append(sends, s)
	}
	for i := range snaps {
		add(Send{Snapshot: snaps[i].Name, Volume: snaps[i].Volume, ID: snaps[i].ID})
		last = &snaps[i]
	}
	add(Send{Volume: head})
	return sends
}

// Stream is one stream of an optimized backup, as the backup's index lists it.
type Stream struct {
	Snapshot string // the snapshot it holds; empty for the head, which comes last
	Parent   string // the earlier snapshot it is incremental against; empty for a whole volume
}

// Receive says where one stream of a backup lands.
type Receive struct {
	Volume   string // the new volume it is received into
	ID       string // the snapshot ID it is kept as; empty for the head
	ParentID string // the snapshot of Volume it is incremental against; empty for a whole stream
}

// Land maps a backup onto new volumes. snaps are the backup's snapshots,
// oldest first, with the IDs they get (their volumes are ignored); streams
// are its optimized streams, none for the portable form, whose snapshots
// all live in the head. A whole stream starts a volume of its own, named by
// newVolume; an incremental one lands in the volume of its parent, which
// must be the newest snapshot there. The volume of the last stream, the
// head's, is the head; the others are retired heads, as a restore in the
// source left them. Land refuses streams that do not map so.
func Land(snaps []Snapshot, streams []Stream, newVolume func() string) (Tree, []Receive, error) {
	t := Tree{Snapshots: make([]Snapshot, len(snaps))}
	copy(t.Snapshots, snaps)
	if len(streams) == 0 {
		t.Head = newVolume()
		for i := range t.Snapshots {
			t.Snapshots[i].Volume = t.Head
		}
		return t, nil, nil
	}
	index := map[string]int{} // snapshot name -> index in t.Snapshots
	for i, s := range t.Snapshots {
		index[s.Name] = i
		t.Snapshots[i].Volume = ""
	}
	newest := map[string]string{} // volume -> name of its newest snapshot
	receives := make([]Receive, len(streams))
	for k, st := range streams {
		if (st.Snapshot == "") != (k == len(streams)-1) {
			return Tree{}, nil, errkind.Wrap(errkind.Invalid, "stream %d of the backup: the head's stream must come last, and only it", k)
		}
		r := &receives[k]
		if st.Parent == "" {
			r.Volume = newVolume()
		} else {
			p, ok := index[st.Parent]
			if !ok || t.Snapshots[p].Volume == "" || newest[t.Snapshots[p].Volume] != st.Parent {
				return Tree{}, nil, errkind.Wrap(errkind.Invalid, "stream %d of the backup is incremental against %q, which is not the newest snapshot received before it", k, st.Parent)
			}
			r.Volume, r.ParentID = t.Snapshots[p].Volume, t.Snapshots[p].ID
		}
		if st.Snapshot == "" {
			t.Head = r.Volume
			continue
		}
		i, ok := index[st.Snapshot]
		if !ok || t.Snapshots[i].Volume != "" {
			return Tree{}, nil, errkind.Wrap(errkind.Invalid, "stream %d of the backup holds snapshot %q, which the index does not list, or an earlier stream holds", k, st.Snapshot)
		}
		t.Snapshots[i].Volume, r.ID = r.Volume, t.Snapshots[i].ID
		newest[r.Volume] = st.Snapshot
	}
	for _, s := range t.Snapshots {
		if s.Volume == "" {
			return Tree{}, nil, errkind.Wrap(errkind.Invalid, "no stream of the backup holds snapshot %q", s.Name)
		}
		if s.Volume != t.Head && !slices.Contains(t.Retired, s.Volume) {
			t.Retired = append(t.Retired, s.Volume)
		}
	}
	return t, receives, nil
}
