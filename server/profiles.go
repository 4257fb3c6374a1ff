package server

import (
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) profileRoutes() {
	s.Handle("GET /1.0/profiles", s.getProfiles, TrustedOnly)
	s.Handle("GET /1.0/profiles/{name}", s.getProfile, TrustedOnly)
}

func (s *Server) getProfiles(e *engine.Engine, r *http.Request) Response {
	ps, err := e.Profiles()
	return list(r, ps, err, func(p *api.Profile) string { return api.Path("profiles", p.Name) })
}

func (s *Server) getProfile(e *engine.Engine, r *http.Request) Response {
	return object(e.Profile(r.PathValue("name")))
}
