package server

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) volumeRoutes() {
	const volume = "/1.0/storage-pools/{pool}/volumes/custom/{name}"
	s.Handle("GET /1.0/storage-volumes", s.getAllVolumes, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes", s.getVolumes, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes/custom", s.getVolumes, TrustedOnly)
	s.Handle("POST /1.0/storage-pools/{pool}/volumes", s.postVolumes, TrustedOnly)
	s.Handle("POST /1.0/storage-pools/{pool}/volumes/custom", s.postVolumes, TrustedOnly)
	s.Handle("GET "+volume, s.getVolume, TrustedOnly)
	s.Handle("PUT "+volume, s.putVolume, TrustedOnly)
	s.Handle("PATCH "+volume, s.patchVolume, TrustedOnly)
	s.Handle("POST "+volume, s.renameVolume, TrustedOnly)
	s.Handle("DELETE "+volume, s.deleteVolume, TrustedOnly)
	s.Handle("GET "+volume+"/snapshots", s.getVolumeSnapshots, TrustedOnly)
	s.Handle("POST "+volume+"/snapshots", s.postVolumeSnapshots, TrustedOnly)
	s.Handle("GET "+volume+"/snapshots/{snap}", s.getVolumeSnapshot, TrustedOnly)
	s.Handle("DELETE "+volume+"/snapshots/{snap}", s.deleteVolumeSnapshot, TrustedOnly)
	s.Handle("GET "+volume+"/export", s.exportVolume, TrustedOnly)
}

func volumePath(v *api.StorageVolume) string { return api.VolumePath(v.Pool, v.Name) }

// getAllVolumes lists the custom volumes of every pool, as Incus's
// /1.0/storage-volumes.
func (s *Server) getAllVolumes(e *engine.Engine, r *http.Request) Response {
	vols, err := e.Volumes(r.Context(), "")
	return list(r, vols, err, volumePath)
}

// getVolumes lists a pool's custom volumes: silo lists no other kind.
func (s *Server) getVolumes(e *engine.Engine, r *http.Request) Response {
	pool := r.PathValue("pool")
	if _, err := e.Pool(r.Context(), pool); err != nil {
		return Error(err)
	}
	vols, err := e.Volumes(r.Context(), pool)
	return list(r, vols, err, volumePath)
}

func (s *Server) getVolume(e *engine.Engine, r *http.Request) Response {
	v, err := e.Volume(r.Context(), r.PathValue("pool"), r.PathValue("name"))
	if err != nil {
		return Error(err)
	}
	return SyncETag(v, volumeETag(v.Description, v.Config))
}

// postVolumes makes a custom volume, in an operation; from an uploaded
// backup stream, importVolume.
func (s *Server) postVolumes(e *engine.Engine, r *http.Request) Response {
	pool := r.PathValue("pool")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/octet-stream") {
		return s.importVolume(e, r)
	}
	var req api.StorageVolumesPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Type != "" && req.Type != api.VolumeTypeCustom {
		return Errorf(http.StatusBadRequest, "type %q: silo makes custom volumes only", req.Type)
	}
	if req.Name == "" {
		return Errorf(http.StatusBadRequest, "name: give the new volume's name")
	}
	return s.async("Creating volume "+pool+"/"+req.Name, volumeResource(pool, req.Name), func(ctx context.Context, e *engine.Engine) error {
		_, err := e.CreateVolume(ctx, pool, req.Name, req.Config)
		return err
	})
}

// putVolume replaces a custom volume's description and config, at once
// as LXD does (a new size= caps it at once); with restore, it brings the
// volume back to a snapshot, in an operation.
func (s *Server) putVolume(e *engine.Engine, r *http.Request) Response {
	return s.writeVolume(e, r, func(cur map[string]string, req *api.StorageVolumePut) (map[string]string, []string) {
		set := maps.Clone(orEmpty(req.Config))
		if req.Description != "" {
			set[engine.VolumeKeyDescription] = req.Description
		}
		var unset []string
		for k := range cur {
			if _, ok := set[k]; !ok {
				unset = append(unset, k)
			}
		}
		return set, unset
	})
}

// patchVolume changes what the body names and keeps the rest: a config
// key set to "" is removed, and one the volume lacks is not found, as
// `silo volume unset` says.
func (s *Server) patchVolume(e *engine.Engine, r *http.Request) Response {
	return s.writeVolume(e, r, func(_ map[string]string, req *api.StorageVolumePut) (map[string]string, []string) {
		set, unset := patchKeys(req.Config)
		if req.Description != "" {
			set[engine.VolumeKeyDescription] = req.Description
		}
		return set, unset
	})
}

// writeVolume carries out a PUT or PATCH of a custom volume: change says
// which keys the body sets and unsets, from the volume's config (its
// description among the keys, as the engine keeps it), unless If-Match
// names another ETag than the volume's (checked in the transaction of
// the write).
func (s *Server) writeVolume(e *engine.Engine, r *http.Request, change func(cur map[string]string, req *api.StorageVolumePut) (map[string]string, []string)) Response {
	pool, name := r.PathValue("pool"), r.PathValue("name")
	var req api.StorageVolumePut
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Restore != "" {
		return s.async("Restoring volume "+pool+"/"+name+" to "+req.Restore, volumeResource(pool, name), func(ctx context.Context, e *engine.Engine) error {
			return e.RestoreVolumeSnapshot(ctx, pool, name, req.Restore)
		})
	}
	match := strings.Trim(r.Header.Get("If-Match"), `"`)
	err := e.UpdateVolumeIf(r.Context(), pool, name, func(cur map[string]string) (map[string]string, []string, error) {
		if match != "" {
			desc := cur[engine.VolumeKeyDescription]
			cfg := maps.Clone(cur)
			delete(cfg, engine.VolumeKeyDescription)
			if match != volumeETag(desc, cfg) {
				return nil, nil, &requestError{code: http.StatusPreconditionFailed, msg: "volume " + name + " in pool " + pool + " changed since its ETag was read"}
			}
		}
		set, unset := change(cur, &req)
		return set, unset, nil
	})
	if err != nil {
		return Error(err)
	}
	return EmptySync()
}

// renameVolume renames a custom volume within its pool (LXD's POST with
// a new name), at once as LXD does.
func (s *Server) renameVolume(e *engine.Engine, r *http.Request) Response {
	pool, name := r.PathValue("pool"), r.PathValue("name")
	var req api.StorageVolumePost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Name == "" {
		return Errorf(http.StatusBadRequest, "name: give the volume's new name")
	}
	if err := e.RenameVolume(r.Context(), pool, name, req.Name); err != nil {
		return Error(err)
	}
	return Created(api.VolumePath(pool, req.Name))
}

// deleteVolume deletes a custom volume that no instance attaches.
func (s *Server) deleteVolume(_ *engine.Engine, r *http.Request) Response {
	pool, name := r.PathValue("pool"), r.PathValue("name")
	return s.async("Deleting volume "+pool+"/"+name, volumeResource(pool, name), func(ctx context.Context, e *engine.Engine) error {
		return e.DeleteVolume(ctx, pool, name)
	})
}

func (s *Server) getVolumeSnapshots(e *engine.Engine, r *http.Request) Response {
	pool, name := r.PathValue("pool"), r.PathValue("name")
	snaps, err := e.VolumeSnapshots(r.Context(), pool, name)
	return list(r, snaps, err, func(sn api.StorageVolumeSnapshot) string { return api.VolumeSnapshotPath(pool, name, sn.Name) })
}

func (s *Server) getVolumeSnapshot(e *engine.Engine, r *http.Request) Response {
	return object(e.VolumeSnapshot(r.Context(), r.PathValue("pool"), r.PathValue("name"), r.PathValue("snap")))
}

// postVolumeSnapshots snapshots a custom volume, in an operation.
func (s *Server) postVolumeSnapshots(_ *engine.Engine, r *http.Request) Response {
	pool, name := r.PathValue("pool"), r.PathValue("name")
	var req api.StorageVolumeSnapshotsPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	return s.async("Snapshotting volume "+pool+"/"+name, volumeResource(pool, name), func(ctx context.Context, e *engine.Engine) error {
		_, err := e.CreateVolumeSnapshot(ctx, pool, name, snapshotOptions(req.Name, req.ExpiresAt))
		return err
	})
}

func (s *Server) deleteVolumeSnapshot(_ *engine.Engine, r *http.Request) Response {
	pool, name, snap := r.PathValue("pool"), r.PathValue("name"), r.PathValue("snap")
	return s.async("Deleting snapshot "+pool+"/"+name+"/"+snap, volumeResource(pool, name), func(ctx context.Context, e *engine.Engine) error {
		return e.DeleteVolumeSnapshot(ctx, pool, name, snap)
	})
}

// volumeETag is the ETag of what PUT writes: a hash of a volume's
// description and config.
func volumeETag(description string, config map[string]string) string {
	return etag(description, orEmpty(config))
}

func volumeResource(pool, name string) map[string][]string {
	return map[string][]string{"storage-pools": {api.Path("storage-pools", pool)}, "storage-volumes": {api.VolumePath(pool, name)}}
}

// importVolume makes custom volume X-LXD-name on the pool from the
// backup stream that the body is (silo volume export's), as LXD's volume
// backup import does. The stream is applied as it arrives, so the answer
// is the volume itself (201), not an operation; a body cut short leaves
// nothing, through the import's journal.
func (s *Server) importVolume(e *engine.Engine, r *http.Request) Response {
	name := r.Header.Get(HeaderName)
	if name == "" {
		return Errorf(http.StatusBadRequest, "%s: give the new volume's name", HeaderName)
	}
	pool := r.PathValue("pool")
	if _, err := e.ImportVolume(r.Context(), r.Body, pool, name); err != nil {
		return Error(err)
	}
	v, err := e.Volume(r.Context(), pool, name)
	if err != nil {
		return Error(err)
	}
	return &syncResponse{metadata: v, location: volumePath(v), code: http.StatusCreated}
}

// exportVolume streams a custom volume's backup, as silo volume export
// writes it: compressed as ?compression= says (zstd by default), without
// snapshots with volume-only=1, as the driver's streams with optimized=1.
// A failure half-way cuts the connection.
func (s *Server) exportVolume(e *engine.Engine, r *http.Request) Response {
	pool, name, q := r.PathValue("pool"), r.PathValue("name"), r.URL.Query()
	if _, err := e.Volume(r.Context(), pool, name); err != nil {
		return Error(err)
	}
	opts := engine.ExportOptions{Compression: q.Get("compression"), InstanceOnly: q.Get("volume-only") == "1", Optimized: q.Get("optimized") == "1"}
	return streamed("volume", name, func(w io.Writer) error { return e.ExportVolume(r.Context(), pool, name, w, opts) })
}
