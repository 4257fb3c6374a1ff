package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

func (s *Server) snapshotRoutes() {
	s.Handle("GET /1.0/instances/{name}/snapshots", s.getSnapshots, TrustedOnly)
	s.Handle("POST /1.0/instances/{name}/snapshots", s.postSnapshots, TrustedOnly)
	s.Handle("GET /1.0/instances/{name}/snapshots/{snap}", s.getSnapshot, TrustedOnly)
	s.Handle("DELETE /1.0/instances/{name}/snapshots/{snap}", s.deleteSnapshot, TrustedOnly)
}

func snapshotPath(name, snap string) string {
	return api.Path("instances", name) + "/snapshots/" + url.PathEscape(snap)
}

func (s *Server) getSnapshots(e *engine.Engine, r *http.Request) Response {
	rec, err := recursion(r)
	if err != nil {
		return Error(err)
	}
	name := r.PathValue("name")
	snaps, err := e.Snapshots(r.Context(), name)
	if err != nil {
		return Error(err)
	}
	if rec > 0 {
		return Sync(snaps)
	}
	paths := make([]string, 0, len(snaps))
	for _, sn := range snaps {
		paths = append(paths, snapshotPath(name, sn.Name))
	}
	return Sync(paths)
}

func (s *Server) getSnapshot(e *engine.Engine, r *http.Request) Response {
	name, snap := r.PathValue("name"), r.PathValue("snap")
	snaps, err := e.Snapshots(r.Context(), name)
	if err != nil {
		return Error(err)
	}
	i := slices.IndexFunc(snaps, func(sn api.InstanceSnapshot) bool { return sn.Name == snap })
	if i < 0 {
		return Error(errkind.Wrap(errkind.NotFound, "snapshot %q of instance %q not found", snap, name))
	}
	if snaps[i].StreamID, err = e.SnapshotStreamID(r.Context(), name, snap); err != nil {
		return Error(err)
	}
	return Sync(snaps[i])
}

func (s *Server) postSnapshots(_ *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	var req api.InstanceSnapshotsPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	return s.async("Snapshotting instance "+name, instanceResource(name), func(ctx context.Context, e *engine.Engine) error {
		_, err := e.CreateSnapshot(ctx, name, snapshotOptions(req.Name, req.ExpiresAt))
		return err
	})
}

// snapshotOptions are the options of a snapshot that a request names,
// with its expiry: absent, by snapshots.expiry; the zero time, never.
func snapshotOptions(name string, expiresAt *time.Time) engine.SnapshotOptions {
	opts := engine.SnapshotOptions{Name: name}
	if expiresAt != nil {
		opts.ExpiresAt, opts.NoExpiry = *expiresAt, expiresAt.IsZero()
	}
	return opts
}

func (s *Server) deleteSnapshot(_ *engine.Engine, r *http.Request) Response {
	name, snap := r.PathValue("name"), r.PathValue("snap")
	return s.async("Deleting snapshot "+name+"/"+snap, instanceResource(name), func(ctx context.Context, e *engine.Engine) error {
		return e.DeleteSnapshot(ctx, name, snap)
	})
}
