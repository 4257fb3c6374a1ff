package server

import (
	"maps"
	"net/http"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/store"
)

func (s *Server) profileRoutes() {
	s.Handle("GET /1.0/profiles", s.getProfiles, TrustedOnly)
	s.Handle("POST /1.0/profiles", s.postProfiles, TrustedOnly)
	s.Handle("GET /1.0/profiles/{name}", s.getProfile, TrustedOnly)
	s.Handle("PUT /1.0/profiles/{name}", s.putProfile, TrustedOnly)
	s.Handle("PATCH /1.0/profiles/{name}", s.patchProfile, TrustedOnly)
	s.Handle("DELETE /1.0/profiles/{name}", s.deleteProfile, TrustedOnly)
	s.Handle("POST /1.0/profiles/{name}", s.renameProfile, TrustedOnly)
}

func (s *Server) getProfiles(e *engine.Engine, r *http.Request) Response {
	ps, err := e.Profiles()
	return list(r, ps, err, func(p *api.Profile) string { return api.Path("profiles", p.Name) })
}

func (s *Server) getProfile(e *engine.Engine, r *http.Request) Response {
	p, err := e.Profile(r.PathValue("name"))
	if err != nil {
		return Error(err)
	}
	return SyncETag(p, profileETag(p.Description, p.Config, p.Devices))
}

// postProfiles makes a profile, with its config and devices.
func (s *Server) postProfiles(e *engine.Engine, r *http.Request) Response {
	var req api.ProfilesPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	p := &store.Profile{Name: req.Name, Description: req.Description, Config: req.Config, Devices: store.DevicesOf(req.Devices)}
	if err := e.CreateProfile(r.Context(), p); err != nil {
		return Error(err)
	}
	return Created(api.Path("profiles", req.Name))
}

// putProfile replaces a profile's description, config and devices.
func (s *Server) putProfile(e *engine.Engine, r *http.Request) Response {
	return s.writeProfile(e, r, func(p *store.Profile, req *api.ProfilePut) {
		p.Description, p.Config, p.Devices = req.Description, req.Config, store.DevicesOf(req.Devices)
	})
}

// patchProfile changes what the body names: config keys and devices are
// merged, a key set to "" removed.
func (s *Server) patchProfile(e *engine.Engine, r *http.Request) Response {
	return s.writeProfile(e, r, func(p *store.Profile, req *api.ProfilePut) {
		if req.Description != "" {
			p.Description = req.Description
		}
		p.Config = maps.Clone(p.Config)
		if p.Config == nil {
			p.Config = map[string]string{}
		}
		for k, v := range req.Config {
			if v == "" {
				delete(p.Config, k)
			} else {
				p.Config[k] = v
			}
		}
		p.Devices = p.Devices.Clone()
		if p.Devices == nil {
			p.Devices = store.Devices{}
		}
		maps.Copy(p.Devices, store.DevicesOf(req.Devices))
	})
}

// writeProfile carries out a PUT or PATCH of a profile, synchronously as
// LXD does, unless If-Match names another ETag than the profile's (checked
// in the transaction of the write).
func (s *Server) writeProfile(e *engine.Engine, r *http.Request, change func(p *store.Profile, req *api.ProfilePut)) Response {
	name := r.PathValue("name")
	var req api.ProfilePut
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if err := checkConfigWrite(req.Config); err != nil {
		return Error(err)
	}
	cur, err := e.Profile(name)
	if err != nil {
		return Error(err)
	}
	p := &store.Profile{Name: name, Description: cur.Description, Config: cur.Config, Devices: store.DevicesOf(cur.Devices)}
	change(p, &req)
	match := strings.Trim(r.Header.Get("If-Match"), `"`)
	err = e.ReplaceProfileIf(r.Context(), p, func(now *store.Profile) error {
		if match != "" && match != profileETag(now.Description, now.Config, now.Devices.Map()) {
			return &requestError{code: http.StatusPreconditionFailed, msg: "profile " + name + " changed since its ETag was read"}
		}
		return nil
	})
	if err != nil {
		return Error(err)
	}
	return EmptySync()
}

// renameProfile renames a profile, and the instances that apply it
// follow (LXD's POST with a new name).
func (s *Server) renameProfile(e *engine.Engine, r *http.Request) Response {
	var req api.ProfilePost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Name == "" {
		return Errorf(http.StatusBadRequest, "name: give the profile's new name")
	}
	if err := e.RenameProfile(r.PathValue("name"), req.Name); err != nil {
		return Error(err)
	}
	return Created(api.Path("profiles", req.Name))
}

func (s *Server) deleteProfile(e *engine.Engine, r *http.Request) Response {
	if err := e.DeleteProfile(r.PathValue("name")); err != nil {
		return Error(err)
	}
	return EmptySync()
}

// profileETag is the ETag of what PUT writes: a hash of the profile's
// description, config and devices.
func profileETag(description string, config map[string]string, devices map[string]map[string]string) string {
	return etag(description, orEmpty(config), devices)
}
