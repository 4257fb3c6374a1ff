package server

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"syscall"

	"github.com/silo-dev/silo/engine"
)

func (s *Server) fileRoutes() {
	s.Handle("GET /1.0/instances/{name}/files", s.getFile, TrustedOnly)
	s.Handle("POST /1.0/instances/{name}/files", s.postFile, TrustedOnly)
}

// The headers of a file's owner, mode and type, as LXD's.
const (
	headerUID   = "X-LXD-uid"
	headerGID   = "X-LXD-gid"
	headerMode  = "X-LXD-mode"
	headerType  = "X-LXD-type"
	headerWrite = "X-LXD-write"
)

// getFile answers the file ?path= of an instance, its owner and mode in
// headers. The path may not leave the instance's root, by .. or by a
// symlink, and must name a regular file.
func (s *Server) getFile(e *engine.Engine, r *http.Request) Response {
	p := r.URL.Query().Get("path")
	if p == "" {
		return Errorf(http.StatusBadRequest, "path: give the file's path in the instance")
	}
	f, err := e.PullFile(r.Context(), r.PathValue("name"), p)
	if err != nil {
		return Error(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return Error(err)
	}
	return &fileResponse{f: f, st: st}
}

type fileResponse struct {
	f  *os.File
	st os.FileInfo
}

func (r *fileResponse) Render(w http.ResponseWriter) {
	defer r.f.Close()
	h := w.Header()
	if sys, ok := r.st.Sys().(*syscall.Stat_t); ok {
		h.Set(headerUID, strconv.FormatUint(uint64(sys.Uid), 10))
		h.Set(headerGID, strconv.FormatUint(uint64(sys.Gid), 10))
		h.Set(headerMode, "0"+strconv.FormatUint(uint64(sys.Mode&0o7777), 8))
	}
	h.Set(headerType, "file")
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(r.st.Size(), 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, r.f); err != nil {
		slog.Debug("the client went before the whole file", "file", r.f.Name(), "error", err)
	}
}

// postFile writes the body as the file ?path= of an instance, replacing it
// atomically, with the owner and mode of the headers (root's and 0644 when
// absent). Only files are written, and only whole: LXD's directories,
// symlinks and appends are refused.
func (s *Server) postFile(e *engine.Engine, r *http.Request) Response {
	p := r.URL.Query().Get("path")
	if p == "" {
		return Errorf(http.StatusBadRequest, "path: give the file's path in the instance")
	}
	if t := r.Header.Get(headerType); t != "" && t != "file" {
		return Errorf(http.StatusBadRequest, "%s %q: silo writes files only", headerType, t)
	}
	if w := r.Header.Get(headerWrite); w != "" && w != "overwrite" {
		return Errorf(http.StatusBadRequest, "%s %q: silo replaces files whole (overwrite)", headerWrite, w)
	}
	uid, err := headerInt(r, headerUID, 10, 1<<32-1)
	if err != nil {
		return Error(err)
	}
	gid, err := headerInt(r, headerGID, 10, 1<<32-1)
	if err != nil {
		return Error(err)
	}
	mode := os.FileMode(0o644)
	if r.Header.Get(headerMode) != "" {
		n, err := headerInt(r, headerMode, 8, 0o7777)
		if err != nil {
			return Error(err)
		}
		mode = engine.FileMode(uint64(n))
	}
	if err := e.PushFile(r.Context(), r.PathValue("name"), p, r.Body, mode, uid, gid); err != nil {
		return Error(err)
	}
	return EmptySync()
}

// headerInt reads a number of base at most max from header h; 0 if absent.
func headerInt(r *http.Request, h string, base int, max uint64) (int, error) {
	v := r.Header.Get(h)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, base, 64)
	if err != nil || n > max {
		return 0, &requestError{code: http.StatusBadRequest, msg: h + " " + strconv.Quote(v) + ": not a valid number"}
	}
	return int(n), nil
}
