package server

import (
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) poolRoutes() {
	s.Handle("GET /1.0/storage-pools", s.getPools, TrustedOnly)
	s.Handle("GET /1.0/storage-pools/{pool}", s.getPool, TrustedOnly)
}

func (s *Server) getPools(e *engine.Engine, r *http.Request) Response {
	pools, err := e.Pools(r.Context())
	return list(r, pools, err, func(p *api.StoragePool) string { return api.Path("storage-pools", p.Name) })
}

func (s *Server) getPool(e *engine.Engine, r *http.Request) Response {
	return object(e.Pool(r.Context(), r.PathValue("pool")))
}
