package server

import (
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) imageRoutes() {
	s.Handle("GET /1.0/images", s.getImages, TrustedOnly)
	s.Handle("GET /1.0/images/{ref}", s.getImage, TrustedOnly)
}

func (s *Server) getImages(e *engine.Engine, r *http.Request) Response {
	imgs, err := e.Images(r.Context())
	return list(r, imgs, err, func(img *api.Image) string { return api.Path("images", img.Fingerprint) })
}

// getImage finds an image by fingerprint, a unique prefix of one, or an
// alias.
func (s *Server) getImage(e *engine.Engine, r *http.Request) Response {
	return object(e.Image(r.Context(), r.PathValue("ref")))
}

// list answers a collection: the paths of its objects, or with recursion
// the objects.
func list[T any](r *http.Request, objs []T, err error, path func(T) string) Response {
	if err != nil {
		return Error(err)
	}
	rec, err := recursion(r)
	if err != nil {
		return Error(err)
	}
	if rec > 0 {
		if objs == nil {
			objs = []T{}
		}
		return Sync(objs)
	}
	paths := make([]string, 0, len(objs))
	for _, o := range objs {
		paths = append(paths, path(o))
	}
	return Sync(paths)
}

// object answers one object, or the error that finding it met.
func object[T any](obj T, err error) Response {
	if err != nil {
		return Error(err)
	}
	return Sync(obj)
}
