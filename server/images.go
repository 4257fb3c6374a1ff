package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
)

func (s *Server) imageRoutes() {
	s.Handle("GET /1.0/images", s.getImages, TrustedOnly)
	s.Handle("GET /1.0/images/{ref}", s.getImage, TrustedOnly)
	s.Handle("POST /1.0/images", s.postImages, TrustedOnly)
	s.Handle("DELETE /1.0/images/{ref}", s.deleteImage, TrustedOnly)
	s.Handle("GET /1.0/images/{ref}/export", s.exportImage, TrustedOnly)
	s.Handle("GET /1.0/images/aliases", s.getAliases, TrustedOnly)
	s.Handle("POST /1.0/images/aliases", s.postAliases, TrustedOnly)
	s.Handle("GET /1.0/images/aliases/{alias}", s.getAlias, TrustedOnly)
	s.Handle("POST /1.0/images/aliases/{alias}", s.renameAlias, TrustedOnly)
	s.Handle("DELETE /1.0/images/aliases/{alias}", s.deleteAlias, TrustedOnly)
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

// deleteImage deletes an image that no instance uses, with its base
// volumes.
func (s *Server) deleteImage(_ *engine.Engine, r *http.Request) Response {
	ref := r.PathValue("ref")
	return s.async("Deleting image "+ref, map[string][]string{"images": {api.Path("images", ref)}},
		func(ctx context.Context, e *engine.Engine) error { return e.DeleteImage(ctx, ref) })
}

// HeaderAliases names, comma-separated, the aliases of an uploaded image:
// LXD adds them in requests of their own, which silo does not serve.
const HeaderAliases = "X-Silo-Aliases"

// postImages imports the image file that the body is (a root filesystem
// tarball or an LXD unified image), checked as it is read; with
// X-LXD-fingerprint, only if it has that fingerprint. The import happens
// while the body arrives, so the answer is the image itself (201, or 200
// when the same file was imported before), not an operation. A JSON body
// publishes an instance instead.
func (s *Server) postImages(e *engine.Engine, r *http.Request) Response {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return s.publish(r)
	}
	opts := engine.ImportOptions{Fingerprint: r.Header.Get("X-LXD-fingerprint")}
	for _, a := range strings.Split(r.Header.Get(HeaderAliases), ",") {
		if a = strings.TrimSpace(a); a != "" {
			opts.Aliases = append(opts.Aliases, a)
		}
	}
	res, err := e.ImportImage(r.Context(), r.Body, opts)
	if err != nil {
		return Error(err)
	}
	code := http.StatusCreated
	if res.Existed {
		code = http.StatusOK // the same file was imported before: nothing changed
	}
	return &syncResponse{metadata: res.Image, location: api.Path("images", res.Fingerprint), code: code}
}

// publish makes an image of an instance or of one of its snapshots, as
// LXD does for a source of type instance or snapshot. The operation's
// metadata gives the image's fingerprint and size when it is done.
func (s *Server) publish(r *http.Request) Response {
	var req api.ImagesPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	name, snap, isSnap := strings.Cut(req.Source.Name, "/")
	switch {
	case req.Source.Type != api.ImageSourceInstance && req.Source.Type != api.ImageSourceSnapshot:
		return Errorf(http.StatusBadRequest, "source.type %q: silo makes images of an instance or a snapshot", req.Source.Type)
	case name == "" || isSnap != (req.Source.Type == api.ImageSourceSnapshot) || isSnap && snap == "":
		return Errorf(http.StatusBadRequest, "source.name %q: give INSTANCE for an instance, INSTANCE/SNAPSHOT for a snapshot", req.Source.Name)
	}
	opts := engine.PublishOptions{Compression: req.CompressionAlgorithm, Properties: req.Properties}
	for _, a := range req.Aliases {
		opts.Aliases = append(opts.Aliases, a.Name)
	}
	o := newOperation(api.ClassTask, "Publishing "+req.Source.Name, instanceResource(name))
	return s.run(o, func(ctx context.Context, e *engine.Engine) error {
		res, err := e.Publish(ctx, name, snap, opts)
		if err != nil {
			return err
		}
		o.setMetadata("fingerprint", res.Fingerprint)
		o.setMetadata("size", res.Size)
		return nil
	})
}

// getAliases lists the aliases, by name.
func (s *Server) getAliases(e *engine.Engine, r *http.Request) Response {
	aliases, err := e.Aliases(r.Context())
	return list(r, aliases, err, func(a api.ImageAliasesEntry) string { return api.Path("images/aliases", a.Name) })
}

func (s *Server) getAlias(e *engine.Engine, r *http.Request) Response {
	return object(e.Alias(r.Context(), r.PathValue("alias")))
}

// postAliases gives an image an alias.
func (s *Server) postAliases(e *engine.Engine, r *http.Request) Response {
	var req api.ImageAliasesPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Name == "" || req.Target == "" {
		return Errorf(http.StatusBadRequest, "name and target: give the alias and the image it names")
	}
	if err := e.AddAlias(r.Context(), req.Target, req.Name); err != nil {
		return Error(err)
	}
	return Created(api.Path("images/aliases", req.Name))
}

// renameAlias renames an alias; the image stays.
func (s *Server) renameAlias(e *engine.Engine, r *http.Request) Response {
	var req api.ImageAliasesEntryPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	if req.Name == "" {
		return Errorf(http.StatusBadRequest, "name: give the alias's new name")
	}
	if err := e.RenameAlias(r.Context(), r.PathValue("alias"), req.Name); err != nil {
		return Error(err)
	}
	return Created(api.Path("images/aliases", req.Name))
}

// deleteAlias removes an alias; the image stays.
func (s *Server) deleteAlias(e *engine.Engine, r *http.Request) Response {
	if err := e.DeleteAlias(r.Context(), r.PathValue("alias")); err != nil {
		return Error(err)
	}
	return EmptySync()
}

// exportImage streams an image as an LXD unified image, compressed as
// ?compression= says (zstd by default). A failure half-way cuts the
// connection, so that the client cannot take a short image for a whole one.
func (s *Server) exportImage(e *engine.Engine, r *http.Request) Response {
	ref := r.PathValue("ref")
	if _, err := e.Image(r.Context(), ref); err != nil {
		return Error(err)
	}
	comp := r.URL.Query().Get("compression")
	return streamed("image", ref, func(w io.Writer) error { return e.ExportImage(r.Context(), ref, w, comp) })
}

// streamed answers the stream that write writes, as a file. A failure
// before the first byte is answered as an error; after it, the
// connection is cut, so that the client cannot take a short stream for a
// whole one. what and name say what is streamed, for the log.
func streamed(what, name string, write func(io.Writer) error) Response {
	return responseFunc(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/octet-stream")
		sw := &startWriter{ResponseWriter: w}
		bw := &bufferedStream{Writer: bufio.NewWriterSize(sw, streamBuffer), w: sw}
		err := write(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			if !sw.started {
				Error(err).Render(w)
				return
			}
			slog.Warn(what+" export cut short", what, name, "error", err)
			panic(http.ErrAbortHandler)
		}
	})
}

// streamBuffer gathers a stream's small writes (a tar header, a small
// file) into large ones: each write to the connection is a chunk of the
// answer, a TLS record and a system call.
const streamBuffer = 256 << 10

// bufferedStream is a stream's buffer, which Flush empties on to the
// client.
type bufferedStream struct {
	*bufio.Writer
	w *startWriter
}

func (b *bufferedStream) Flush() error {
	if err := b.Writer.Flush(); err != nil {
		return err
	}
	return b.w.Flush()
}

// startWriter notes whether anything was written, after which an error can
// no longer be answered.
type startWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Flush sends what the answer holds, for a stream whose reader waits on
// it.
func (w *startWriter) Flush() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}
