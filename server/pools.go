package server

import (
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) poolRoutes() {
	s.Handle("GET /1.0/storage-pools", s.getPools, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}", s.getPool, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes", s.getVolumes, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes/custom", s.getVolumes, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}/volumes/custom/{name}", s.getVolume, TrustedOnly)
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
