package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
)

// Response is what a handler answers, rendered as LXD renders its own.
type Response interface {
	Render(w http.ResponseWriter)
}

type syncResponse struct {
	metadata any
	etag     string
	location string
	code     int
}

// Sync answers metadata at once, with 200.
func Sync(metadata any) Response { return &syncResponse{metadata: metadata, code: http.StatusOK} }

// SyncETag answers metadata with its ETag, for an object that can be
// written back with If-Match.
func SyncETag(metadata any, etag string) Response {
	return &syncResponse{metadata: metadata, etag: etag, code: http.StatusOK}
}

// Created answers 201 with the new object's path, for what is made at once.
func Created(location string) Response {
	return &syncResponse{metadata: map[string]any{}, location: location, code: http.StatusCreated}
}

// EmptySync answers a done request with an empty object, as LXD does.
func EmptySync() Response { return Sync(map[string]any{}) }

func (s *syncResponse) Render(w http.ResponseWriter) {
	if s.etag != "" {
		w.Header().Set("ETag", `"`+s.etag+`"`)
	}
	if s.location != "" {
		w.Header().Set("Location", s.location)
	}
	status := http.StatusText(s.code)
	if s.code == http.StatusOK || s.code == http.StatusCreated {
		status = api.Success.String()
	}
	writeJSON(w, s.code, api.Response{Type: api.ResponseSync, Status: status, StatusCode: s.code, Metadata: s.metadata})
}

type asyncResponse struct{ op *api.Operation }

func (a *asyncResponse) Render(w http.ResponseWriter) {
	path := api.Path("operations", a.op.ID)
	w.Header().Set("Location", path)
	writeJSON(w, http.StatusAccepted, api.Response{Type: api.ResponseAsync, Status: api.Running.String(),
		StatusCode: int(api.Running), Operation: path, Metadata: a.op})
}

type errorResponse struct {
	code int
	msg  string
}

// Error answers err with the HTTP status its kind maps to, on one line.
func Error(err error) Response {
	return &errorResponse{code: StatusOf(err), msg: strings.Join(strings.Fields(err.Error()), " ")}
}

// Errorf answers an error of status code.
func Errorf(code int, format string, args ...any) Response {
	return &errorResponse{code: code, msg: fmt.Sprintf(format, args...)}
}

func (e *errorResponse) Render(w http.ResponseWriter) {
	writeJSON(w, e.code, api.Response{Type: api.ResponseError, ErrorCode: e.code, Error: e.msg})
}

// statuses maps the kinds of error to HTTP statuses, as LXD answers them.
var statuses = map[error]int{
	errkind.Invalid:       http.StatusBadRequest,
	errkind.NotFound:      http.StatusNotFound,
	errkind.AlreadyExists: http.StatusConflict,
	errkind.Busy:          http.StatusLocked,
	errkind.NoSpace:       http.StatusInsufficientStorage,
	errkind.Unavailable:   http.StatusServiceUnavailable,
}

// StatusOf is the HTTP status of err: by its kind, 500 for one without.
func StatusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.code
	}
	if code, ok := statuses[errkind.Of(err)]; ok {
		return code
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("the client went before its answer", "error", err)
	}
}

// MaxBody is the most a JSON request body may hold.
const MaxBody = 4 << 20

// requestError is a fault of the request itself, with its status.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

// Decode reads the JSON body of r into v, strictly: a body over MaxBody,
// malformed JSON, a field v does not have, or anything after the object
// is refused with an error whose status says which.
func Decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		} else if err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &requestError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body over %d bytes", MaxBody)}
	case err == io.EOF:
		return &requestError{code: http.StatusBadRequest, msg: "request body: a JSON object is needed"}
	}
	return &requestError{code: http.StatusBadRequest, msg: "request body: " + err.Error()}
}
