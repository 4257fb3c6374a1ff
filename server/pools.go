package server

import (
	"context"
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) poolRoutes() {
	s.Handle("GET /1.0/storage-pools", s.getPools, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}", s.getPool, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes", s.getVolumes, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes/custom", s.getVolumes, TrustedOnly)
	s.Handle("POST /1.0/storage-pools/{pool}/volumes", s.postVolumes, TrustedOnly)
	s.Handle("POST /1.0/storage-pools/{pool}/volumes/custom", s.postVolumes, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes/custom/{name}", s.getVolume, TrustedOnly)
	s.Handle("DELETE /1.0/storage-pools/{pool}/volumes/custom/{name}", s.deleteVolume, TrustedOnly)
}

func (s *Server) getPools(e *engine.Engine, r *http.Request) Response {
	pools, err := e.Pools(r.Context())
	return list(r, pools, err, func(p *api.StoragePool) string { return api.Path("storage-pools", p.Name) })
}

func (s *Server) getPool(e *engine.Engine, r *http.Request) Response {
	return object(e.Pool(r.Context(), r.PathValue("pool")))
}

// getVolumes lists a pool's custom volumes: silo lists no other kind.
func (s *Server) getVolumes(e *engine.Engine, r *http.Request) Response {
	pool := r.PathValue("pool")
	if _, err := e.Pool(r.Context(), pool); err != nil {
		return Error(err)
	}
	vols, err := e.Volumes(r.Context(), pool)
	return list(r, vols, err, func(v *api.StorageVolume) string { return api.VolumePath(v.Pool, v.Name) })
}

func (s *Server) getVolume(e *engine.Engine, r *http.Request) Response {
	return object(e.Volume(r.Context(), r.PathValue("pool"), r.PathValue("name")))
}

// postVolumes makes a custom volume, in an operation.
func (s *Server) postVolumes(_ *engine.Engine, r *http.Request) Response {
	pool := r.PathValue("pool")
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

// deleteVolume deletes a custom volume that no instance attaches.
func (s *Server) deleteVolume(_ *engine.Engine, r *http.Request) Response {
	pool, name := r.PathValue("pool"), r.PathValue("name")
	return s.async("Deleting volume "+pool+"/"+name, volumeResource(pool, name), func(ctx context.Context, e *engine.Engine) error {
		return e.DeleteVolume(ctx, pool, name)
	})
}

func volumeResource(pool, name string) map[string][]string {
	return map[string][]string{"storage-pools": {api.Path("storage-pools", pool)}, "storage-volumes": {api.VolumePath(pool, name)}}
}
