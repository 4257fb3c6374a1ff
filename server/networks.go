package server

import (
	"net/http"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) networkRoutes() {
	s.Handle("GET /1.0/networks", s.getNetworks, TrustedOnly)
	s.Handle("POST /1.0/networks", s.postNetworks, TrustedOnly)
	s.Handle("GET /1.0/networks/{name}", s.getNetwork, TrustedOnly)
	s.Handle("PUT /1.0/networks/{name}", s.putNetwork, TrustedOnly)
	s.Handle("PATCH /1.0/networks/{name}", s.patchNetwork, TrustedOnly)
	s.Handle("DELETE /1.0/networks/{name}", s.deleteNetwork, TrustedOnly)
	s.Handle("GET /1.0/networks/{name}/leases", s.getLeases, TrustedOnly)
}

func (s *Server) getNetworks(e *engine.Engine, r *http.Request) Response {
	nets, err := e.Networks()
	return list(r, nets, err, func(n *api.Network) string { return api.Path("networks", n.Name) })
}

func (s *Server) getNetwork(e *engine.Engine, r *http.Request) Response {
	n, _, err := e.NetworkInfo(r.PathValue("name"))
	if err != nil {
		return Error(err)
	}
	return SyncETag(n, networkETag(n.Config))
}

// putNetwork replaces a network's config, at once as LXD does, and
// brings the host to it.
func (s *Server) putNetwork(e *engine.Engine, r *http.Request) Response {
	return s.writeNetwork(e, r, func(cur map[string]string, req *api.NetworkPut) (map[string]string, []string) {
		var unset []string
		for k := range cur {
			if _, ok := req.Config[k]; !ok {
				unset = append(unset, k)
			}
		}
		return orEmpty(req.Config), unset
	})
}

// patchNetwork changes the keys the body names: a key set to "" is
// removed.
func (s *Server) patchNetwork(e *engine.Engine, r *http.Request) Response {
	return s.writeNetwork(e, r, func(_ map[string]string, req *api.NetworkPut) (map[string]string, []string) {
		return patchKeys(req.Config)
	})
}

// writeNetwork carries out a PUT or PATCH of a network: change says which
// keys the body sets and unsets, unless If-Match names another ETag than
// the network's (checked in the transaction of the write).
func (s *Server) writeNetwork(e *engine.Engine, r *http.Request, change func(cur map[string]string, req *api.NetworkPut) (map[string]string, []string)) Response {
	name := r.PathValue("name")
	var req api.NetworkPut
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	match := strings.Trim(r.Header.Get("If-Match"), `"`)
	err := e.SetNetworkIf(r.Context(), name, func(cur map[string]string) (map[string]string, []string, error) {
		if match != "" && match != networkETag(cur) {
			return nil, nil, &requestError{code: http.StatusPreconditionFailed, msg: "network " + name + " changed since its ETag was read"}
		}
		set, unset := change(cur, &req)
		return set, unset, nil
	})
	if err != nil {
		return Error(err)
	}
	return EmptySync()
}

// networkETag is the ETag of what PUT writes: a hash of a network's
// config.
func networkETag(config map[string]string) string { return etag(orEmpty(config)) }

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
