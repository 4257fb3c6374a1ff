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
// while the body arrives, so the answer is the image itself (201), not an
// operation.
func (s *Server) postImages(e *engine.Engine, r *http.Request) Response {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return Errorf(http.StatusBadRequest, "silo imports images uploaded as a file (application/octet-stream), from no other source")
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
	return &syncResponse{metadata: res.Image, location: api.Path("images", res.Fingerprint), code: http.StatusCreated}
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
