package server

import (
	"io"
	"net/http"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/store"
)

// The headers of an instance's backup upload (POST /1.0/instances with
// an application/octet-stream body): LXD's name and pool, and silo's
// ways of taking the stream.
const (
	HeaderName = "X-LXD-name"
	HeaderPool = "X-LXD-pool"
	// HeaderCopy, "1", makes the instance a copy of the stream's: created
	// now, with a copy's identity, as silo copy makes one.
	HeaderCopy = "X-Silo-Copy"
	// HeaderKeepAddresses, "1", keeps the MACs and addresses of its nics.
	HeaderKeepAddresses = "X-Silo-Keep-Addresses"
	// HeaderRefresh, "1", refreshes the instance that HeaderName names
	// from the stream, a refresh's (GET .../export?refresh=1); with
	// HeaderForce "1", replacing the snapshots that diverged.
	HeaderRefresh = "X-Silo-Refresh"
	HeaderForce   = "X-Silo-Force"
)

// postInstanceBackup makes an instance from the backup stream that the
// body is, as LXD's backup import does, or refreshes one from a refresh
// stream. The stream is applied as it arrives, so the answer is the
// instance itself (201 made, 200 refreshed; without its disk usage), not
// an operation; a body
// cut short leaves nothing, through the import's journal.
func (s *Server) postInstanceBackup(e *engine.Engine, r *http.Request) Response {
	name, h := r.Header.Get(HeaderName), r.Header
	code := http.StatusCreated
	var err error
	switch {
	case h.Get(HeaderRefresh) == "1":
		if name == "" {
			return Errorf(http.StatusBadRequest, "%s: name the instance to refresh", HeaderName)
		}
		_, err = e.ReceiveRefresh(r.Context(), r.Body, name, h.Get(HeaderForce) == "1")
		code = http.StatusOK
	default:
		receive := e.Import
		if h.Get(HeaderCopy) == "1" {
			receive = e.ReceiveCopy
		}
		var i *store.Instance
		if i, err = receive(r.Context(), r.Body, name, h.Get(HeaderPool), h.Get(HeaderKeepAddresses) == "1"); err == nil {
			name = i.Name
		}
	}
	if err != nil {
		return Error(err)
	}
	inst, err := e.InstanceBrief(r.Context(), name)
	if err != nil {
		return Error(err)
	}
	return &syncResponse{metadata: inst, location: api.Path("instances", name), code: code}
}

// exportInstance streams an instance's backup, as silo export writes it:
// compressed as ?compression= says (zstd by default), without snapshots
// with instance-only=1, as the driver's streams with optimized=1 (files
// as they are on disk, their shift in the index, for a pool of the same
// driver), or, with refresh=1, as a refresh stream for a receiver that
// holds the snapshots whose UUIDs have lists, comma-separated (and with
// optimized=1 too, by the driver's incremental streams when the
// receiver's copy of the snapshot they start from has the stream ID
// base-stream). A failure
// half-way cuts the connection, so that the client cannot take a short
// stream for a whole one.
func (s *Server) exportInstance(e *engine.Engine, r *http.Request) Response {
	name, q := r.PathValue("name"), r.URL.Query()
	if _, err := e.Instance(r.Context(), name); err != nil {
		return Error(err)
	}
	opts := engine.ExportOptions{Compression: q.Get("compression"), InstanceOnly: q.Get("instance-only") == "1",
		Optimized: q.Get("optimized") == "1", Refresh: q.Get("refresh") == "1", BaseStream: q.Get("base-stream")}
	opts.KeepShift = opts.Optimized
	for _, u := range strings.Split(q.Get("have"), ",") {
		if u != "" {
			opts.Have = append(opts.Have, u)
		}
	}
	return streamed("instance", name, func(w io.Writer) error { return e.Export(r.Context(), name, w, opts) })
}
