package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/trust"
)

// TrustedByCertificate is the Config.Trusted of a server that listens on
// HTTPS: a client is trusted when the fingerprint of the certificate it
// connected with is in the store's trust list, read afresh per request so
// that `silo config trust remove` takes effect at once.
func TrustedByCertificate(eng *engine.Engine) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		peer := peerCertificate(r)
		if peer == nil {
			return false
		}
		ok, err := eng.IsTrusted(r.Context(), trust.Fingerprint(peer.Raw))
		if err != nil {
			slog.Warn("trust list unreadable", "error", err)
		}
		return ok
	}
}

// ListenHTTPS listens on the server's core.https_address with mutual TLS
// 1.3, its certificate made in the state directory on first start; nil
// when no address is set.
func (s *Server) ListenHTTPS(ctx context.Context) (net.Listener, error) {
	cfg, err := s.eng.ServerConfig(ctx)
	if err != nil {
		return nil, err
	}
	addr := cfg[engine.KeyHTTPSAddress]
	if addr == "" {
		return nil, nil
	}
	cert, err := s.eng.ServerCertificate()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return tls.NewListener(l, trust.ServerConfig(cert)), nil
}

// ServeHTTPS serves the API on l, from ListenHTTPS, until ctx is done.
// The operations its clients started are ServeUnix's to wait for.
func (s *Server) ServeHTTPS(ctx context.Context, l net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		// A failed handshake is the client's fault (no certificate it
		// pinned, a protocol older than TLS 1.3): not worth a warning.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
