package server

import (
	"bytes"
	"net/http"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/metrics"
)

func (s *Server) metricsRoutes() {
	s.Handle("GET /1.0/metrics", s.getMetrics, TrustedOnly)
}

// getMetrics answers the running instances' figures in Prometheus's text
// format, as LXD's /1.0/metrics. They are gathered whole before the
// answer starts, so that a failure is still an error envelope.
func (s *Server) getMetrics(e *engine.Engine, r *http.Request) Response {
	var buf bytes.Buffer
	if err := e.Metrics(r.Context(), &buf); err != nil {
		return Error(err)
	}
	return responseFunc(func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", metrics.ContentType)
		_, _ = w.Write(buf.Bytes())
	})
}
