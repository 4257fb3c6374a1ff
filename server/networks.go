package server

import (
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) networkRoutes() {
	s.Handle("GET /1.0/networks", s.getNetworks, TrustedOnly)
	s.Handle("GET /1.0/networks/{name}", s.getNetwork, TrustedOnly)
	s.Handle("GET /1.0/networks/{name}/leases", s.getLeases, TrustedOnly)
}

func (s *Server) getNetworks(e *engine.Engine, r *http.Request) Response {
	nets, err := e.Networks()
	return list(r, nets, err, func(n *api.Network) string { return api.Path("networks", n.Name) })
}

func (s *Server) getNetwork(e *engine.Engine, r *http.Request) Response {
	n, _, err := e.NetworkInfo(r.PathValue("name"))
	return object(n, err)
}

func (s *Server) getLeases(e *engine.Engine, r *http.Request) Response {
	_, leases, err := e.NetworkInfo(r.PathValue("name"))
	return object(leases, err)
}
