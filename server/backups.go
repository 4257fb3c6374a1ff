package server

import (
	"context"
	"io"
	"net/http"
	"net/url"
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

func (s *Server) backupRoutes() {
	s.Handle("GET /1.0/instances/{name}/backups", s.getBackups, TrustedOnly)
	s.Handle("POST /1.0/instances/{name}/backups", s.postBackups, TrustedOnly)
	s.Handle("GET /1.0/instances/{name}/backups/{backup}", s.getBackup, TrustedOnly)
	s.Handle("POST /1.0/instances/{name}/backups/{backup}", s.renameBackup, TrustedOnly)
	s.Handle("DELETE /1.0/instances/{name}/backups/{backup}", s.deleteBackup, TrustedOnly)
	s.Handle("GET /1.0/instances/{name}/backups/{backup}/export", s.exportBackup, TrustedOnly)
}

func backupPath(name, b string) string {
	return api.Path("instances", name) + "/backups/" + url.PathEscape(b)
}

// backupResources are what an operation on backup b of instance name
// acts on, as LXD lists them.
func backupResources(name, b string) map[string][]string {
	return map[string][]string{"instances": {api.Path("instances", name)}, "backups": {backupPath(name, b)}}
}

func (s *Server) getBackups(e *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	backups, err := e.Backups(r.Context(), name)
	return list(r, backups, err, func(b api.InstanceBackup) string { return backupPath(name, b.Name) })
}

func (s *Server) getBackup(e *engine.Engine, r *http.Request) Response {
	return object(e.Backup(r.Context(), r.PathValue("name"), r.PathValue("backup")))
}

// postBackups makes a backup in an operation. What is wrong with the
// request (no such instance, a name taken, a compression silo does not
// know) is answered at once, and the backup is named before the
// operation starts, so that its resources name it.
func (s *Server) postBackups(e *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	var req api.InstanceBackupsPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	opts := engine.BackupOptions{Name: req.Name, ExpiresAt: req.ExpiresAt, InstanceOnly: req.InstanceOnly,
		Optimized: req.OptimizedStorage, Compression: req.CompressionAlgorithm}
	if err := e.CheckBackup(name, &opts); err != nil {
		return Error(err)
	}
	return s.async("Backing up instance "+name, backupResources(name, opts.Name), func(ctx context.Context, e *engine.Engine) error {
		_, err := e.CreateBackup(ctx, name, opts)
		return err
	})
}

// renameBackup and deleteBackup answer an operation, as LXD's, for a
// backup that exists.
func (s *Server) renameBackup(e *engine.Engine, r *http.Request) Response {
	name, b := r.PathValue("name"), r.PathValue("backup")
	var req api.InstanceBackupPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if _, err := e.Backup(r.Context(), name, b); err != nil {
		return Error(err)
	}
	return s.async("Renaming backup "+name+"/"+b, backupResources(name, b), func(ctx context.Context, e *engine.Engine) error {
		return e.RenameBackup(ctx, name, b, req.Name)
	})
}

func (s *Server) deleteBackup(e *engine.Engine, r *http.Request) Response {
	name, b := r.PathValue("name"), r.PathValue("backup")
	if _, err := e.Backup(r.Context(), name, b); err != nil {
		return Error(err)
	}
	return s.async("Deleting backup "+name+"/"+b, backupResources(name, b), func(ctx context.Context, e *engine.Engine) error {
		return e.DeleteBackup(ctx, name, b)
	})
}

// exportBackup sends a backup's file, with its length, and ranges for a
// client that resumes.
func (s *Server) exportBackup(e *engine.Engine, r *http.Request) Response {
	f, b, err := e.OpenBackup(r.Context(), r.PathValue("name"), r.PathValue("backup"))
	if err != nil {
		return Error(err)
	}
	return responseFunc(func(w http.ResponseWriter) {
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", b.CreatedAt, f)
	})
}
