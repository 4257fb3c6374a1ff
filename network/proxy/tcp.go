package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// serveTCP forwards each connection that ln accepts to the instance,
// until ln fails.
func (p *proxy) serveTCP(ln *net.TCPListener) error {
	for {
		c, err := ln.AcceptTCP()
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
			// Out of descriptors or memory for now: the connections
			// that hold them end in time, and the proxy must outlive them.
			slog.Warn("accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			return err
		}
		go p.forwardTCP(c)
	}
}

// forwardTCP connects client to the instance and copies both ways until
// both directions have ended.
func (p *proxy) forwardTCP(client *net.TCPConn) {
	defer client.Close()
	c, err := p.target.dial(p.cfg.Connect.network(), p.cfg.Connect.Addr.String())
	if err != nil {
		slog.Warn("connect", "client", client.RemoteAddr(), "err", err)
		return
	}
	upstream := c.(*net.TCPConn)
	defer upstream.Close()
	done := make(chan struct{})
	go func() {
		pipe(upstream, client)
		close(done)
	}()
	pipe(client, upstream)
	<-done
}

// pipe copies src to dst until src ends (spliced in the kernel: no buffer
// here), and passes the end on. A clean end half-closes dst, whose reader
// sees it as the end of what it is sent and may still answer; a failure
// closes both connections, so that the other direction ends too.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
