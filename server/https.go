package server

import (
	"context"
	"crypto/tls"
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

// HTTPS is the server's listener for remotes, on core.https_address.
type HTTPS struct {
	s    *Server
	addr string // the address listened on; "" for none
	hs   *http.Server
}

// ListenHTTPS listens on the server's core.https_address, if it is set,
// with mutual TLS 1.3; the server's certificate is made in the state
// directory on first start. An address that cannot be listened on fails
// here, at the server's start.
func (s *Server) ListenHTTPS(ctx context.Context) (*HTTPS, error) {
	h := &HTTPS{s: s}
	addr, err := h.configured(ctx)
	if err != nil {
		return nil, err
	}
	return h, h.listen(addr)
}

// Addr is the address listened on, "" for none.
func (h *HTTPS) Addr() string { return h.addr }

func (h *HTTPS) configured(ctx context.Context) (string, error) {
	cfg, err := h.s.eng.ServerConfig(ctx)
	return cfg[engine.KeyHTTPSAddress], err
}

// listen serves on addr, after the listener before it (if any) is shut.
func (h *HTTPS) listen(addr string) error {
	h.close()
	h.addr = addr
	if addr == "" {
		return nil
	}
	cert, err := h.s.eng.ServerCertificate()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	h.hs = &http.Server{Handler: h.s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		// A failed handshake is the client's fault (no certificate it
		// pinned, a protocol older than TLS 1.3): not worth a warning.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)}
	go h.hs.Serve(tls.NewListener(l, trust.ServerConfig(cert)))
	return nil
}

func (h *HTTPS) close() {
	if h.hs == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.hs.Shutdown(sctx)
	h.hs = nil
}

// Follow moves the listener when core.https_address changes, as `silo
// config set` writes it beside the server, checking every interval, until
// ctx is done; then it shuts the listener. The operations its clients
// started are ServeUnix's to wait for.
func (h *HTTPS) Follow(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	defer h.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addr, err := h.configured(ctx)
		if err != nil || addr == h.addr {
			continue
		}
		if err := h.listen(addr); err != nil {
			slog.Error("HTTPS listener", "error", err)
			continue
		}
		slog.Info("HTTPS listener moved", "address", addr)
	}
}
