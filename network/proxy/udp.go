package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// defaultUDPIdle is how long a UDP session lives without a datagram either
// way, as conntrack keeps an unreplied UDP flow.
const defaultUDPIdle = 60 * time.Second

// maxDatagram holds the largest UDP payload.
const maxDatagram = 1<<16 - 1

// datagrams are the buffers that sessions receive replies in, only for the
// time of one: a session waits for its next one without a buffer.
var datagrams = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// udpForward forwards datagrams between the clients of one listening
// socket and the instance: each client has a session, a socket connected
// from inside the instance, whose replies go back to that client.
type udpForward struct {
	p    *proxy
	ln   *net.UDPConn
	idle time.Duration

	mu       sync.Mutex
	sessions map[netip.AddrPort]*session
}

type session struct {
	client netip.AddrPort
	conn   *net.UDPConn
	last   time.Time // of the last datagram either way; under udpForward.mu
}

// serveUDP forwards what clients send on ln, until ln fails.
func (p *proxy) serveUDP(ln *net.UDPConn) error {
	u := &udpForward{p: p, ln: ln, idle: p.cfg.UDPIdle, sessions: map[netip.AddrPort]*session{}}
	if u.idle <= 0 {
		u.idle = defaultUDPIdle
	}
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		s, err := u.session(client)
		if err != nil {
			slog.Warn("connect", "client", client, "err", err)
			continue
		}
		// A refusal from the instance's side (nothing listens yet) loses
		// this datagram, as it would without the proxy.
		if _, err := s.conn.Write(buf[:n]); err != nil {
			slog.Debug("send", "client", client, "err", err)
		}
	}
}

// session returns the session of client, marked as active now, and makes
// it on its first datagram.
func (u *udpForward) session(client netip.AddrPort) (*session, error) {
	u.mu.Lock()
	s := u.sessions[client]
	if s != nil {
		s.last = time.Now()
	}
	u.mu.Unlock()
	if s != nil {
		return s, nil
	}
	c, err := u.p.target.dial(u.p.cfg.Connect.network(), u.p.cfg.Connect.Addr.String())
	if err != nil {
		return nil, err
	}
	s = &session{client: client, conn: c.(*net.UDPConn), last: time.Now()}
	u.mu.Lock()
	u.sessions[client] = s
	u.mu.Unlock()
	go u.reply(s)
	return s, nil
}

// reply sends what the instance answers on s back to its client, until s
// has been idle for u.idle.
func (u *udpForward) reply(s *session) {
	defer s.conn.Close()
	rc, err := s.conn.SyscallConn()
	if err != nil {
		u.expire(s, true)
		return
	}
	var failed error
	recv := func(fd uintptr) bool {
		buf := datagrams.Get().(*[]byte)
		defer datagrams.Put(buf)
		n, err := unix.Read(int(fd), *buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return false
		case errors.Is(err, unix.ECONNREFUSED):
			// An earlier datagram found no listener: later ones may.
		case err != nil:
			failed = err
		default:
			u.touch(s)
			if _, err := u.ln.WriteToUDPAddrPort((*buf)[:n], s.client); err != nil {
				slog.Debug("reply", "client", s.client, "err", err)
			}
		}
		return true
	}
	for {
		u.mu.Lock()
		deadline := s.last.Add(u.idle)
		u.mu.Unlock()
		s.conn.SetReadDeadline(deadline)
		err := rc.Read(recv)
		if err == nil {
			err, failed = failed, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if u.expire(s, false) {
				return
			}
		} else if err != nil {
			slog.Warn("receive", "client", s.client, "err", err)
			u.expire(s, true)
			return
		}
	}
}

func (u *udpForward) touch(s *session) {
	u.mu.Lock()
	s.last = time.Now()
	u.mu.Unlock()
}

// expire ends s if it has been idle long enough, or anyway if now, and
// says whether it did. Under the lock that session takes, a datagram that
// arrives as s expires finds either s still alive or a new session.
func (u *udpForward) expire(s *session, now bool) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !now && time.Since(s.last) < u.idle {
		return false
	}
	delete(u.sessions, s.client)
	return true
}
