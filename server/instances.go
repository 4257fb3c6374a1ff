package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/store"
)

func (s *Server) instanceRoutes() {
	s.Handle("GET /1.0/instances", s.getInstances, TrustedOnly)
	s.Handle("POST /1.0/instances", s.postInstances, TrustedOnly)
	s.Handle("GET /1.0/instances/{name}", s.getInstance, TrustedOnly)
	s.Handle("PUT /1.0/instances/{name}", s.putInstance, TrustedOnly)
	s.Handle("PATCH /1.0/instances/{name}", s.patchInstance, TrustedOnly)
	s.Handle("DELETE /1.0/instances/{name}", s.deleteInstance, TrustedOnly)
	s.Handle("POST /1.0/instances/{name}", s.renameInstance, TrustedOnly)
	s.Handle("GET /1.0/instances/{name}/export", s.exportInstance, TrustedOnly)
}

// getInstances lists the instances: their paths; with recursion=1 the
// objects without their state; with recursion=2 with it, as silo list
// --format json prints them.
func (s *Server) getInstances(e *engine.Engine, r *http.Request) Response {
	rec, err := recursion(r)
	if err != nil {
		return Error(err)
	}
	insts, err := e.Instances(r.Context())
	if err != nil {
		return Error(err)
	}
	switch rec {
	case 0:
		paths := make([]string, 0, len(insts))
		for _, i := range insts {
			paths = append(paths, api.Path("instances", i.Name))
		}
		return Sync(paths)
	case 1:
		for _, i := range insts {
			i.State = nil
		}
	}
	return Sync(insts)
}

// postInstances makes an instance from an image, and starts it when asked;
// from an uploaded backup stream, postInstanceBackup.
func (s *Server) postInstances(e *engine.Engine, r *http.Request) Response {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/octet-stream") {
		return s.postInstanceBackup(e, r)
	}
	var req api.InstancesPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Name == "" {
		return Errorf(http.StatusBadRequest, "name: give the new instance's name")
	}
	if req.Type != "" && req.Type != api.TypeContainer {
		return Errorf(http.StatusBadRequest, "type %q: silo makes containers only", req.Type)
	}
	ref := req.Source.Alias
	switch {
	case req.Source.Type != "image":
		return Errorf(http.StatusBadRequest, "source type %q: silo makes instances from images only", req.Source.Type)
	case ref != "" && req.Source.Fingerprint != "":
		return Errorf(http.StatusBadRequest, "source: give an alias or a fingerprint, not both")
	case ref == "":
		ref = req.Source.Fingerprint
	}
	if ref == "" {
		return Errorf(http.StatusBadRequest, "source: give the image's alias or fingerprint")
	}
	if err := engine.CheckConfig(req.Config); err != nil {
		return Error(err)
	}
	opts := engine.CreateOptions{Config: orEmpty(req.Config), Ephemeral: req.Ephemeral, Profiles: req.Profiles,
		Devices: store.DevicesOf(req.Devices)}
	// The pool is the root disk's, as lxc init --storage gives it; with
	// none, the profiles' root disk names it.
	var pool string
	for _, d := range req.Devices {
		if d["type"] == "disk" && d["path"] == "/" {
			pool = d["pool"]
		}
	}
	return s.async("Creating instance "+req.Name, instanceResource(req.Name), func(ctx context.Context, e *engine.Engine) error {
		if _, err := e.Create(ctx, ref, req.Name, pool, opts); err != nil {
			return err
		}
		if req.Start {
			return e.Start(ctx, req.Name)
		}
		return nil
	})
}

func (s *Server) getInstance(e *engine.Engine, r *http.Request) Response {
	if _, err := recursion(r); err != nil {
		return Error(err)
	}
	describe := e.Instance
	if r.URL.Query().Get("recursion") == "0" {
		// Without the disk usage, which can take a walk of the files.
		describe = e.InstanceBrief
	}
	inst, err := describe(r.Context(), r.PathValue("name"))
	if err != nil {
		return Error(err)
	}
	return SyncETag(inst, instanceETag(inst.Config, inst.Devices, inst.Profiles, inst.Ephemeral))
}

// putInstance replaces an instance's own config (but the volatile.* keys
// silo keeps), devices, profiles and ephemeral flag, or, with restore,
// brings it back to a snapshot.
func (s *Server) putInstance(e *engine.Engine, r *http.Request) Response {
	return s.writeInstance(e, r, func(inst *store.Instance, req *api.InstancePut) {
		config := maps.Clone(orEmpty(req.Config))
		maps.DeleteFunc(config, func(k, _ string) bool { return isVolatile(k) })
		for k, v := range inst.Config {
			if isVolatile(k) {
				config[k] = v
			}
		}
		inst.Config, inst.Devices, inst.Profiles = config, store.DevicesOf(req.Devices), orNone(req.Profiles)
		if req.Ephemeral != nil {
			inst.Ephemeral = *req.Ephemeral
		}
	})
}

// patchInstance changes what the body names and keeps the rest: config
// keys and devices are merged into the instance's own; a key set to ""
// is removed.
func (s *Server) patchInstance(e *engine.Engine, r *http.Request) Response {
	return s.writeInstance(e, r, func(inst *store.Instance, req *api.InstancePut) {
		if req.Config != nil {
			inst.Config = orEmpty(inst.Config)
			for k, v := range req.Config {
				if isVolatile(k) {
					continue
				}
				if v == "" {
					delete(inst.Config, k)
				} else {
					inst.Config[k] = v
				}
			}
		}
		if req.Devices != nil {
			inst.Devices = inst.Devices.Clone()
			if inst.Devices == nil {
				inst.Devices = store.Devices{}
			}
			maps.Copy(inst.Devices, store.DevicesOf(req.Devices))
		}
		if req.Profiles != nil {
			inst.Profiles = req.Profiles
		}
		if req.Ephemeral != nil {
			inst.Ephemeral = *req.Ephemeral
		}
	})
}

// writeInstance carries out a PUT or PATCH of an instance: change applies
// the body, unless If-Match names another ETag than the instance's
// (checked in the same transaction as the write).
func (s *Server) writeInstance(e *engine.Engine, r *http.Request, change func(inst *store.Instance, req *api.InstancePut)) Response {
	name := r.PathValue("name")
	var req api.InstancePut
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if err := checkConfigWrite(req.Config); err != nil {
		return Error(err)
	}
	if req.Restore != "" {
		return s.async("Restoring snapshot "+name+"/"+req.Restore, instanceResource(name), func(ctx context.Context, e *engine.Engine) error {
			return e.RestoreSnapshot(ctx, name, req.Restore, true)
		})
	}
	match := strings.Trim(r.Header.Get("If-Match"), `"`)
	if match != "" {
		inst, err := e.Instance(r.Context(), name)
		if err != nil {
			return Error(err)
		}
		if match != instanceETag(inst.Config, inst.Devices, inst.Profiles, inst.Ephemeral) {
			return Errorf(http.StatusPreconditionFailed, "instance %s changed since its ETag was read", name)
		}
	}
	return s.async("Updating instance "+name, instanceResource(name), func(ctx context.Context, e *engine.Engine) error {
		return e.UpdateInstance(ctx, name, func(inst *store.Instance) error {
			if match != "" && match != instanceETag(inst.Config, inst.Devices.Map(), inst.Profiles, inst.Ephemeral) {
				return &requestError{code: http.StatusPreconditionFailed, msg: "instance " + name + " changed since its ETag was read"}
			}
			change(inst, &req)
			return nil
		})
	})
}

func (s *Server) deleteInstance(_ *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	return s.async("Deleting instance "+name, instanceResource(name), func(ctx context.Context, e *engine.Engine) error {
		return e.Delete(ctx, name, false)
	})
}

// renameInstance renames an instance (LXD's POST with a new name).
func (s *Server) renameInstance(_ *engine.Engine, r *http.Request) Response {
	name := r.PathValue("name")
	var req api.InstancePost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Name == "" {
		return Errorf(http.StatusBadRequest, "name: give the instance's new name")
	}
	return s.async("Renaming instance "+name+" to "+req.Name, instanceResource(name), func(ctx context.Context, e *engine.Engine) error {
		return e.Rename(ctx, name, req.Name)
	})
}

// instanceETag is the ETag of what PUT writes, as LXD's is: a hash of the
// instance's own config, devices, profiles and ephemeral flag.
func instanceETag(config map[string]string, devices map[string]map[string]string, profiles []string, ephemeral bool) string {
	return etag(orEmpty(config), devices, orNone(profiles), ephemeral)
}

// etag hashes the JSON of what a write replaces.
func etag(parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func instanceResource(name string) map[string][]string {
	return map[string][]string{"instances": {api.Path("instances", name)}}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orNone(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// isVolatile says whether a config key is one that silo keeps for itself
// (volatile.eth0.hwaddr...), which a write leaves as it is.
func isVolatile(key string) bool { return strings.HasPrefix(key, "volatile.") }

// patchKeys splits the config of a PATCH into the keys it sets and
// those it removes, given "".
func patchKeys(cfg map[string]string) (set map[string]string, unset []string) {
	set = map[string]string{}
	for k, v := range cfg {
		if v == "" {
			unset = append(unset, k)
		} else {
			set[k] = v
		}
	}
	slices.Sort(unset)
	return set, unset
}

// checkConfigWrite checks the config of a PUT or PATCH: the keys it
// sets with their values, and those it removes (given as "") as config
// unset checks them; volatile keys are left to silo.
func checkConfigWrite(cfg map[string]string) error {
	set, unset := patchKeys(cfg)
	if err := engine.CheckConfig(set); err != nil {
		return err
	}
	return engine.CheckKeys(slices.DeleteFunc(unset, isVolatile)...)
}
