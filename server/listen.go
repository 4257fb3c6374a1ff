package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/fsutil"
)

// SocketName is the unix socket's, in the state directory.
const SocketName = "unix.socket"

// ListenUnix listens on the unix socket at path, for root and group gid
// (mode 0660). A socket that a live server answers on is refused; one
// that a dead server left is replaced. The returned lock file, held until
// the server ends, keeps a second server of the same state directory from
// taking the socket over between the check and the listen.
func ListenUnix(path string, gid int) (net.Listener, *os.File, error) {
	lock, err := fsutil.LockFile(filepath.Join(filepath.Dir(path), "locks", "serve.lock"), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		if errkind.Of(err) == errkind.Busy {
			return nil, nil, errkind.Wrap(errkind.Busy, "another silo server serves %s", filepath.Dir(path))
		}
		return nil, nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		lock.Close()
		return nil, nil, errkind.Wrap(errkind.Busy, "another server listens on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, nil, fmt.Errorf("remove the stale socket: %w", err)
	}
	// The socket is made with no access and opened up once it has its
	// group, so that no one else connects in between.
	old := syscall.Umask(0o777)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err == nil {
		l.(*net.UnixListener).SetUnlinkOnClose(true)
		if err = os.Chown(path, 0, gid); err == nil {
			err = os.Chmod(path, 0o660)
		}
		if err != nil {
			l.Close()
		}
	}
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, lock, nil
}

// ServeUnix serves the API on l, the unix socket from ListenUnix, whose
// clients are all trusted, until ctx is done; see Serve.
func (s *Server) ServeUnix(ctx context.Context, l net.Listener, grace time.Duration) error {
	return s.Serve(ctx, l, true, grace)
}

// Serve serves the API on l until ctx is done; then it stops taking
// requests, closes the server's event streams, lets the requests under way
// end, and waits for the operations in flight, for up to grace. local marks l's clients as trusted (the unix
// socket); on any other listener Config.Trusted decides, and a TLS
// listener (tls.NewListener) gives it r.TLS with the client's certificate.
func (s *Server) Serve(ctx context.Context, l net.Listener, local bool, grace time.Duration) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if local {
		hs.ConnContext = func(ctx context.Context, _ net.Conn) context.Context { return Local(ctx) }
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := errors.Join(s.CloseStreams(sctx), hs.Shutdown(sctx), s.Wait(sctx))
	<-errc
	return err
}
