package server

import (
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) networkRoutes() {
	s.Handle("GET /1.0/networks", s.getNetworks, TrustedOnly)
	s.Handle("POST /1.0/networks", s.postNetworks, TrustedOnly)
	s.Handle("GET /1.0/networks/{name}", s.getNetwork, TrustedOnly)
	s.Handle("DELETE /1.0/networks/{name}", s.deleteNetwork, TrustedOnly)
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

// postNetworks makes a managed bridge, at once as LXD does.
func (s *Server) postNetworks(e *engine.Engine, r *http.Request) Response {
	var req api.NetworksPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Type != "" && req.Type != "bridge" {
		return Errorf(http.StatusBadRequest, "type %q: silo makes bridges only", req.Type)
	}
	if err := e.CreateNetwork(r.Context(), req.Name, req.Config); err != nil {
		return Error(err)
	}
	return Created(api.Path("networks", req.Name))
}

// deleteNetwork deletes a network that no nic is on.
func (s *Server) deleteNetwork(e *engine.Engine, r *http.Request) Response {
	if err := e.DeleteNetwork(r.Context(), r.PathValue("name")); err != nil {
		return Error(err)
	}
	return EmptySync()
}
