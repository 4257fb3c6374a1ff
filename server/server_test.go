package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/testutil"
)

func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	testutil.NeedRoot(t, "the engine's state directory")
	e, err := engine.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return New(e, cfg)
}

func get(t *testing.T, url string) (int, api.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r
}

// A request that is not over the unix socket is served only if Trusted
// says so; GET /1.0 answers anyone, and says which it is.
func TestTrust(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		s := newServer(t, Config{Trusted: func(*http.Request) bool { return trusted }})
		ts := httptest.NewServer(s.Handler())
		code, r := get(t, ts.URL+"/1.0")
		auth := r.Metadata.(map[string]any)["auth"]
		if code != http.StatusOK || auth != map[bool]string{false: "untrusted", true: "trusted"}[trusted] {
			t.Errorf("trusted %v: GET /1.0: %d, auth %v", trusted, code, auth)
		}
		if _, hasEnv := r.Metadata.(map[string]any)["environment"]; hasEnv != trusted {
			t.Errorf("trusted %v: the host's environment shown: %v", trusted, hasEnv)
		}
		code, r = get(t, ts.URL+"/1.0/instances")
		if want := map[bool]int{false: http.StatusForbidden, true: http.StatusOK}[trusted]; code != want || r.ErrorCode != 0 && r.ErrorCode != want {
			t.Errorf("trusted %v: GET /1.0/instances: %d %+v, want %d", trusted, code, r, want)
		}
		ts.Close()
	}
	// With no Trusted at all, only the socket's clients are.
	ts := httptest.NewServer(newServer(t, Config{}).Handler())
	defer ts.Close()
	if code, _ := get(t, ts.URL+"/1.0/profiles"); code != http.StatusForbidden {
		t.Errorf("no Trusted: %d, want 403", code)
	}
}

// The socket is root's and the group's alone; a second server of the same
// state directory is refused; a socket that a dead server left is
// replaced.
func TestListenUnix(t *testing.T) {
	testutil.NeedRoot(t, "the socket's group")
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	l, lock, err := ListenUnix(path, 4321)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode() != os.ModeSocket|0o660 || fi.Sys().(*syscall.Stat_t).Gid != 4321 {
		t.Fatalf("socket %v gid %d, %v", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, err)
	}
	if _, _, err := ListenUnix(path, 0); errkind.Of(err) != errkind.Busy {
		t.Fatalf("a second server: %v", err)
	}
	// A server that died: its lock is free, its socket answers no one.
	lock.Close()
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	l, lock, err = ListenUnix(path, 0)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer lock.Close()
	defer l.Close()
	// Another process listening there, without the lock, is refused too.
	lock.Close()
	if _, _, err := ListenUnix(path, 0); errkind.Of(err) != errkind.Busy {
		t.Fatalf("a socket that answers: %v", err)
	}
}

// The log's wrapper keeps the connection's abilities: a websocket needs
// to hijack it.
func TestHandlerHijacks(t *testing.T) {
	s := newServer(t, Config{})
	hijacked := make(chan error, 1)
	s.Handle("GET /1.0/hijack", func(_ *engine.Engine, r *http.Request) Response {
		return responseFunc(func(w http.ResponseWriter) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			hijacked <- err
		})
	}, Untrusted)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if resp, err := http.Get(ts.URL + "/1.0/hijack"); err == nil {
		resp.Body.Close()
	}
	if err := <-hijacked; err != nil {
		t.Fatal(err)
	}
}

// Serve on a listener that is not local leaves trust to Config.Trusted,
// and ends, with its operations, when its context does.
func TestServeListener(t *testing.T) {
	s := newServer(t, Config{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l, false, time.Minute) }()
	code, r := get(t, "http://"+l.Addr().String()+"/1.0")
	if code != http.StatusOK || r.Metadata.(map[string]any)["auth"] != "untrusted" {
		t.Errorf("GET /1.0 over TCP: %d %+v", code, r)
	}
	if code, _ := get(t, "http://"+l.Addr().String()+"/1.0/instances"); code != http.StatusForbidden {
		t.Errorf("GET /1.0/instances over TCP, untrusted: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Every route the server serves is in doc/rest-api.yaml, and the
// description names no route that the server lacks.
func TestRoutesDescribed(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "doc", "rest-api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	params := regexp.MustCompile(`\{[a-z]+\}`)
	described := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				described[strings.ToUpper(method)+" "+params.ReplaceAllString(path, "{}")] = true
			}
		}
	}
	served := map[string]bool{}
	for _, r := range newServer(t, Config{}).Routes() {
		served[params.ReplaceAllString(r, "{}")] = true
	}
	for r := range served {
		if !described[r] {
			t.Errorf("%s is served but not described", r)
		}
	}
	for r := range described {
		if !served[r] {
			t.Errorf("%s is described but not served", r)
		}
	}
}
