package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/errkind"
)

// server is a silo serve running in the background on an env's state
// directory.
type apiServer struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	done   chan struct{}
	socket string
	c      *client.Client
}

// serve starts silo serve on the env's state directory, with extra
// variables in its environment, and waits until it answers.
func (e *env) serve(extra ...string) *apiServer {
	e.t.Helper()
	return e.serveWith(nil, extra...)
}

// serveWith is serve with flags.
func (e *env) serveWith(flags []string, extra ...string) *apiServer {
	e.t.Helper()
	argv := e.silo(append([]string{"serve"}, flags...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(append(os.Environ(), "SILO_STATE_DIR="+e.state), e.extra...), extra...)
	s := &apiServer{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{}), socket: filepath.Join(e.state, "unix.socket")}
	s.start(e.t)
	return s
}

// start starts the server's command, and waits until it answers.
func (s *apiServer) start(t *testing.T) {
	t.Helper()
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t) })
	s.c = client.NewUnix(s.socket)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := s.c.Server(context.Background()); err == nil {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("silo serve ended: %s", s.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("silo serve does not answer after 30 s: %s", s.out)
		}
	}
}

// stop ends the server with SIGTERM, as systemd does, and checks that it
// ends well.
func (s *apiServer) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		t.Errorf("silo serve still runs a minute after SIGTERM: %s", s.out)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("silo serve exits %d after SIGTERM: %s", code, s.out)
	}
	if _, err := os.Stat(s.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket outlives the server: %v", err)
	}
}

// zombies lists the server's children that ended and that it has not
// reaped.
func (s *apiServer) zombies() []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ")".
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(s.cmd.Process.Pid) {
			out = append(out, string(b))
		}
	}
	return out
}

// must waits for an operation and fails the test if it fails.
func must(t *testing.T) func(op *client.Operation, err error) {
	return func(op *client.Operation, err error) {
		t.Helper()
		if err == nil {
			err = op.Wait(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// failsWith checks that err is the server's answer code.
func failsWith(t *testing.T, err error, code int, want string) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(ce.Message, want) || strings.Contains(ce.Message, "\n") {
		t.Fatalf("got %v; want error %d with one line containing %q", err, code, want)
	}
}

// cliJSON is what a silo command prints with --format json, reread into
// a value of v's type, for comparing with what the API answers.
func (e *env) cliJSON(v any, args ...string) any {
	e.t.Helper()
	out := reflect.New(reflect.TypeOf(v)).Interface()
	e.apiJSON(out, args...)
	return reflect.ValueOf(out).Elem().Interface()
}

// The API drives an instance through its life, and answers what the CLI
// prints: create and start, snapshot, restore, config writes with ETags,
// stop, rename, delete; the CLI's own commands show through at once.
func TestServeInstances(t *testing.T) {
	e := bootEnv(t, "btrfs")
	s := e.serve()
	c, ctx := s.c, context.Background()
	info, err := c.Server(ctx)
	if err != nil || info.Auth != "trusted" || info.APIVersion != "1.0" || info.Environment == nil {
		t.Fatalf("GET /1.0: %+v, %v", info, err)
	}
	fi, err := os.Stat(s.socket)
	if err != nil || fi.Mode() != os.ModeSocket|0o660 || fi.Sys().(*syscall.Stat_t).Gid != 0 {
		t.Fatalf("socket %v, %v: want a socket of mode 0660, group root", fi.Mode(), err)
	}
	e.fails(5, "another silo server serves", "serve")

	must(t)(c.CreateInstance(ctx, api.InstancesPost{Name: "web", Source: api.InstanceSource{Type: "image", Alias: "bb"},
		Config: map[string]string{"user.a": "1"}, Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": e.pool}},
		Start: true}))
	inst, etag, err := c.Instance(ctx, "web")
	if err != nil || inst.Status != "Running" || inst.Pool() != e.pool || inst.Config["user.a"] != "1" || etag == "" {
		t.Fatalf("after create with start: %+v, ETag %q, %v", inst, etag, err)
	}
	e.ok("exec", "web", "--", "true")

	// Snapshot, change, restore: the change is gone.
	e.sh("web", "echo one > /etc/motd")
	must(t)(c.CreateSnapshot(ctx, "web", api.InstanceSnapshotsPost{Name: "s1"}))
	must(t)(c.CreateSnapshot(ctx, "web", api.InstanceSnapshotsPost{}))
	snaps, err := c.Snapshots(ctx, "web")
	if err != nil || len(snaps) != 2 || snaps[0].Name != "s1" || snaps[1].Name != "snap0" {
		t.Fatalf("snapshots %+v, %v", snaps, err)
	}
	if sn, err := c.Snapshot(ctx, "web", "s1"); err != nil || sn.Name != "s1" {
		t.Fatalf("snapshot s1: %+v, %v", sn, err)
	}
	_, err = c.Snapshot(ctx, "web", "nope")
	failsWith(t, err, http.StatusNotFound, `snapshot "nope"`)
	e.sh("web", "echo two > /etc/motd")
	must(t)(c.RestoreSnapshot(ctx, "web", "s1"))
	if got := e.sh("web", "cat /etc/motd"); got != "one\n" {
		t.Fatalf("after restore through the API: %q", got)
	}
	must(t)(c.DeleteSnapshot(ctx, "web", "snap0"))
	if snaps := e.cliJSON([]api.InstanceSnapshot{}, "snapshot", "list", "web").([]api.InstanceSnapshot); len(snaps) != 1 {
		t.Fatalf("silo snapshot list after a delete through the API: %+v", snaps)
	}

	// Files in and out; nothing outside the instance's root.
	if err := c.PushFile(ctx, "web", "/root/f", strings.NewReader("hello\n"), 0o4750, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if got := e.sh("web", "stat -c '%a %u %g' /root/f; cat /root/f"); got != "4750 1000 1001\nhello\n" {
		t.Fatalf("the file pushed through the API: %q", got)
	}
	rc, owner, err := c.PullFile(ctx, "web", "/root/f")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "hello\n" || owner.UID != 1000 || owner.GID != 1001 || owner.Mode != 0o750 {
		t.Fatalf("pulled %q, %+v", data, owner)
	}
	e.sh("web", "ln -s /../../../etc/shadow /root/out")
	for _, c2 := range []struct {
		path string
		code int
		want string
	}{
		{"/root/../../etc/passwd", http.StatusBadRequest, "leaves the instance's root"},
		{"/root/out", http.StatusBadRequest, "through a symlink"},
		{"/root", http.StatusBadRequest, "not a regular file"},
		{"/root/nope", http.StatusNotFound, "not found"},
		{"relative", http.StatusBadRequest, "must be absolute"},
	} {
		_, _, err := c.PullFile(ctx, "web", c2.path)
		failsWith(t, err, c2.code, c2.want)
	}
	failsWith(t, c.PushFile(ctx, "web", "/root/../../tmp/x", strings.NewReader("x"), 0o644, 0, 0),
		http.StatusBadRequest, "leaves the instance's root")

	// Config writes with ETags: a stale one is refused with 412.
	_, etag, _ = c.Instance(ctx, "web")
	must(t)(c.PatchInstance(ctx, "web", api.InstancePut{Config: map[string]string{"user.b": "2"}}, etag))
	_, err = c.PatchInstance(ctx, "web", api.InstancePut{Config: map[string]string{"user.c": "3"}}, etag)
	failsWith(t, err, http.StatusPreconditionFailed, "changed since its ETag")
	inst, etag, _ = c.Instance(ctx, "web")
	if inst.Config["user.a"] != "1" || inst.Config["user.b"] != "2" || inst.Config["user.c"] != "" {
		t.Fatalf("config after PATCH %v", inst.Config)
	}
	put := api.InstancePut{Config: map[string]string{"user.d": "4"}, Devices: inst.Devices, Profiles: inst.Profiles}
	must(t)(c.UpdateInstance(ctx, "web", put, etag))
	if got := e.ok("config", "show", "web"); !strings.Contains(got, "user.d") || strings.Contains(got, "user.a") {
		t.Fatalf("silo config show after PUT:\n%s", got)
	}
	if after, _, _ := c.Instance(ctx, "web"); after.Config["volatile.eth0.hwaddr"] != inst.Config["volatile.eth0.hwaddr"] {
		t.Fatalf("PUT without the volatile keys lost them: %v", after.Config)
	}
	_, err = c.PatchInstance(ctx, "web", api.InstancePut{Config: map[string]string{"nope.key": "1"}}, "")
	failsWith(t, err, http.StatusBadRequest, `unknown config key "nope.key"`)
	op, err := c.PatchInstance(ctx, "web", api.InstancePut{Devices: map[string]map[string]string{"d": {"type": "disk"}}}, "")
	if err != nil || op.Wait(ctx) == nil || op.StatusCode != api.Failure || op.Err == "" {
		t.Fatalf("a bad device through PATCH: %v, %+v", err, op)
	}

	ops, err := c.Operations(ctx)
	if err != nil || len(ops["success"]) != 7 || len(ops["failure"]) != 1 || !strings.Contains(ops["failure"][0].Err, "device d") {
		t.Fatalf("operations %+v, %v", ops, err)
	}

	// Stop; the state says so; rename; delete.
	must(t)(c.UpdateInstanceState(ctx, "web", api.InstanceStatePut{Action: "stop", Timeout: 5}))
	if st, err := c.InstanceState(ctx, "web"); err != nil || st.Status != "Stopped" || st.Pid != 0 {
		t.Fatalf("state after stop: %+v, %v", st, err)
	}
	if z := s.zombies(); len(z) > 0 {
		t.Fatalf("the server keeps the monitors of stopped instances as zombies: %v", z)
	}
	_, err = c.UpdateInstanceState(ctx, "web", api.InstanceStatePut{Action: "freeze"})
	failsWith(t, err, http.StatusBadRequest, `action "freeze"`)
	must(t)(c.RenameInstance(ctx, "web", "www"))
	if e.status("www").State != "stopped" {
		t.Fatal("silo list does not show the instance renamed through the API")
	}

	// What the CLI makes, the server shows, and the JSON is the CLI's.
	e.launch("bb", "cli")
	e.ok("stop", "cli")
	insts, err := c.Instances(ctx)
	if err != nil || len(insts) != 2 {
		t.Fatalf("instances %+v, %v", insts, err)
	}
	sameJSON(t, "GET /1.0/instances?recursion=2", insts, e.cliJSON([]*api.Instance{}, "list"))
	one, _, _ := c.Instance(ctx, "cli")
	sameJSON(t, "GET /1.0/instances/cli", one, e.cliJSON(&api.Instance{}, "info", "cli"))
	imgs, _ := c.Images(ctx)
	sameJSON(t, "GET /1.0/images?recursion=1", imgs, e.cliJSON([]*api.Image{}, "image", "list"))
	img, _ := c.Image(ctx, "bb")
	sameJSON(t, "GET /1.0/images/bb", img, e.cliJSON(&api.Image{}, "image", "info", "bb"))
	pools, _ := c.Pools(ctx)
	sameJSON(t, "GET /1.0/storage-pools?recursion=1", pools, e.cliJSON([]*api.StoragePool{}, "pool", "list"))
	pool, _ := c.Pool(ctx, e.pool)
	sameJSON(t, "GET /1.0/storage-pools/"+e.pool, pool, e.cliJSON(&api.StoragePool{}, "pool", "info", e.pool))
	e.ok("volume", "create", e.pool, "v1")
	vols, _ := c.Volumes(ctx, e.pool)
	sameJSON(t, "GET volumes?recursion=1", vols, e.cliJSON([]*api.StorageVolume{}, "volume", "list", e.pool))
	vol, _, _ := c.Volume(ctx, e.pool, "v1")
	sameJSON(t, "GET volumes/custom/v1", vol, e.cliJSON(&api.StorageVolume{}, "volume", "info", e.pool, "v1"))
	nets, _ := c.Networks(ctx)
	sameJSON(t, "GET /1.0/networks?recursion=1", nets, e.cliJSON([]*api.Network{}, "network", "list"))
	profiles, _ := c.Profiles(ctx)
	sameJSON(t, "GET /1.0/profiles?recursion=1", profiles, e.cliJSON([]*api.Profile{}, "profile", "list"))
	profile, _, _ := c.Profile(ctx, "default")
	sameJSON(t, "GET /1.0/profiles/default", profile, e.cliJSON(&api.Profile{}, "profile", "show", "default"))

	must(t)(c.DeleteInstance(ctx, "www"))
	_, _, err = c.Instance(ctx, "www")
	failsWith(t, err, http.StatusNotFound, `"www" not found`)
	if !errors.Is(err, errkind.NotFound) {
		t.Fatalf("%v is not NotFound", err)
	}
	e.ok("volume", "delete", e.pool, "v1")
}

// sameJSON checks that the API's answer marshals as the CLI's JSON does.
func sameJSON(t *testing.T, what string, api, cli any) {
	t.Helper()
	a, _ := json.Marshal(api)
	b, _ := json.Marshal(cli)
	if !bytes.Equal(a, b) {
		t.Errorf("%s answers\n%s\nbut the CLI prints\n%s", what, a, b)
	}
}

// Bad requests get one line of error with the status that says why,
// change nothing, and leave the server serving; 100 clients at once all
// get their answer.
func TestServeBadRequestsAndLoad(t *testing.T) {
	e := newEnv(t, "dir")
	s := e.serve()
	ctx := context.Background()
	hc := client.UnixHTTP(s.socket)
	raw := func(method, path, body string) (int, api.Response) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://silo"+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var r api.Response
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode, r
	}
	huge := `{"name":"` + strings.Repeat("x", 5<<20) + `"}`
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/1.0/instances", `{"name":`, 400, "unexpected EOF"},
		{"POST", "/1.0/instances", `not json`, 400, "invalid character"},
		{"POST", "/1.0/instances", ``, 400, "a JSON object is needed"},
		{"POST", "/1.0/instances", `{"name":"a","colour":"red"}`, 400, `unknown field "colour"`},
		{"POST", "/1.0/instances", `{"name":"a"} {"name":"b"}`, 400, "more than one JSON value"},
		{"POST", "/1.0/instances", `{"name":"a","source":{"type":"copy"}}`, 400, `source type "copy"`},
		{"POST", "/1.0/instances", `{"source":{"type":"image","alias":"x"}}`, 400, "name"},
		{"POST", "/1.0/instances", huge, 413, "request body over"},
		{"PUT", "/1.0/instances/a/state", `{"action":"start","extra":1}`, 400, `unknown field "extra"`},
		{"GET", "/1.0/instances?recursion=7", ``, 400, `recursion "7"`},
		{"GET", "/1.0/instances/nope", ``, 404, `instance "nope" not found`},
		{"GET", "/1.0/nowhere", ``, 404, "no such path"},
		{"DELETE", "/1.0/images", ``, 405, "method not allowed"},
		{"GET", "/1.0/operations/nope/wait?timeout=x", ``, 404, `operation "nope" not found`},
	} {
		code, r := raw(c.method, c.path, c.body)
		if code != c.code || r.Type != "error" || r.ErrorCode != c.code || !strings.Contains(r.Error, c.want) || strings.Contains(r.Error, "\n") {
			t.Errorf("%s %s %.40q: %d %+v; want %d with %q", c.method, c.path, c.body, code, r, c.code, c.want)
		}
	}
	if insts, err := s.c.Instances(ctx); err != nil || len(insts) != 0 {
		t.Fatalf("after the bad requests: %v, %v", insts, err)
	}

	// 100 clients at once, each with its own connection.
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	for i := range 3 {
		e.ok("create", "tiny", fmt.Sprintf("i%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.UnixHTTP(s.socket).Get("http://silo/1.0/instances?recursion=1")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var insts []api.Instance
			err = json.NewDecoder(resp.Body).Decode(&api.Response{Metadata: &insts})
			if err == nil && (resp.StatusCode != http.StatusOK || len(insts) != 3 || insts[0].State != nil) {
				err = fmt.Errorf("%s: %d instances (want 3, without their state)", resp.Status, len(insts))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("one of 100 concurrent clients: %v", err)
		}
	}
	if _, err := s.c.Server(ctx); err != nil {
		t.Fatal(err)
	}
}

// A server killed in the middle of an operation leaves what the next
// start of the server finishes or undoes, as a command's death does: a
// create killed before it committed is gone, one killed after is there.
func TestServeCrash(t *testing.T) {
	e := newEnv(t, "btrfs")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	for _, c := range []struct {
		step string
		kept bool
	}{{"cloned", false}, {"committed", true}} {
		s := e.serve("SILO_CRASH_AT=create/" + c.step)
		name := "c-" + c.step
		op, err := s.c.CreateInstance(context.Background(), api.InstancesPost{Name: name,
			Source: api.InstanceSource{Type: "image", Alias: "tiny"}})
		if err != nil {
			t.Fatal(err)
		}
		<-s.done
		if ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the server was not killed at create/%s (operation %s): %v\n%s", c.step, op.ID, s.cmd.ProcessState, s.out)
		}
		// The socket of the dead server is still there: the next one
		// replaces it, and recovers before it serves.
		if _, err := os.Stat(s.socket); err != nil {
			t.Fatal(err)
		}
		s = e.serve()
		_, _, err = s.c.Instance(context.Background(), name)
		if kept := err == nil; kept != c.kept {
			t.Fatalf("killed at create/%s: the instance is there: %v, want %v (%v)", c.step, kept, c.kept, err)
		}
		e.consistent()
		s.stop(t)
	}
}

// A command that dies while the server runs leaves nothing that refuses
// the server's requests for long: the server recovers now and then.
func TestServeRecoversCommands(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	s := e.serveWith([]string{"--recover-every", "200ms"})
	e.extra = []string{"SILO_CRASH_AT=create/cloned"}
	if r := e.run("create", "tiny", "c"); r.signal != syscall.SIGKILL {
		t.Fatalf("create was not killed: %+v", r)
	}
	e.extra = nil
	eventually(t, "the server undoes the killed create", func() bool {
		op, err := s.c.CreateInstance(context.Background(), api.InstancesPost{Name: "c", Source: api.InstanceSource{Type: "image", Alias: "tiny"}})
		return err == nil && op.Wait(context.Background()) == nil
	})
	e.consistent()
}

// Stopping the server with SIGTERM lets the operation in flight finish.
func TestServeShutdownWaits(t *testing.T) {
	e := bootEnv(t, "dir")
	e.launch("bb", "a")
	s := e.serve()
	op, err := s.c.UpdateInstanceState(context.Background(), "a", api.InstanceStatePut{Action: "restart"})
	if err != nil {
		t.Fatal(err)
	}
	s.stop(t)
	if st := e.status("a"); st.State != "running" {
		t.Fatalf("after SIGTERM in the middle of %q: the instance is %s\n%s", op.Description, st.State, s.out)
	}
}

// Profiles, custom volumes, networks and images are made, changed and
// deleted through the API as through the CLI, which sees each change.
func TestServeWrites(t *testing.T) {
	e := newEnv(t, "dir")
	e.ok("image", "import", writeFile(t, rootfs(t)), "--alias", "tiny")
	s := e.serve()
	c, ctx := s.c, context.Background()

	// Profiles, with ETags.
	if err := c.CreateProfile(ctx, api.ProfilesPost{Name: "web", Description: "web servers",
		Config: map[string]string{"limits.cpu": "1"}}); err != nil {
		t.Fatal(err)
	}
	failsWith(t, c.CreateProfile(ctx, api.ProfilesPost{Name: "web"}), http.StatusConflict, `"web" already exists`)
	failsWith(t, c.CreateProfile(ctx, api.ProfilesPost{Name: "bad", Config: map[string]string{"no.such": "1"}}),
		http.StatusBadRequest, `unknown config key "no.such"`)
	p, etag, err := c.Profile(ctx, "web")
	if err != nil || p.Config["limits.cpu"] != "1" || etag == "" {
		t.Fatalf("profile %+v, ETag %q, %v", p, etag, err)
	}
	if err := c.PatchProfile(ctx, "web", api.ProfilePut{Config: map[string]string{"user.x": "1"}}, etag); err != nil {
		t.Fatal(err)
	}
	failsWith(t, c.PatchProfile(ctx, "web", api.ProfilePut{Config: map[string]string{"user.y": "1"}}, etag),
		http.StatusPreconditionFailed, "changed since its ETag")
	_, etag, _ = c.Profile(ctx, "web")
	if err := c.UpdateProfile(ctx, "web", api.ProfilePut{Description: "new", Config: map[string]string{"user.z": "1"}}, etag); err != nil {
		t.Fatal(err)
	}
	var shown api.Profile
	e.apiJSON(&shown, "profile", "show", "web")
	if shown.Description != "new" || len(shown.Config) != 1 || shown.Config["user.z"] != "1" {
		t.Fatalf("silo profile show after PUT: %+v", shown)
	}
	if err := c.DeleteProfile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	failsWith(t, c.DeleteProfile(ctx, "default"), http.StatusBadRequest, "cannot be deleted")
	if r := e.run("profile", "show", "web"); r.code != 3 {
		t.Fatalf("the profile deleted through the API: silo profile show exits %d", r.code)
	}

	// A custom volume.
	must(t)(c.CreateVolume(ctx, "default", api.StorageVolumesPost{Name: "v1", Config: map[string]string{"user.a": "b"}}))
	if v := e.volume("default", "v1"); v.Config["user.a"] != "b" {
		t.Fatalf("silo volume info: %+v", v)
	}
	must(t)(c.DeleteVolume(ctx, "default", "v1"))
	if r := e.run("volume", "info", "default", "v1"); r.code != 3 {
		t.Fatalf("the volume deleted through the API: silo volume info exits %d", r.code)
	}

	// A network.
	if err := c.CreateNetwork(ctx, api.NetworksPost{Name: "apibr0"}); err != nil {
		t.Fatal(err)
	}
	var n api.Network
	e.json(&n, "network", "info", "apibr0")
	if n.Name != "apibr0" || n.Config["ipv4.address"] == "" {
		t.Fatalf("silo network info: %+v", n)
	}
	if err := c.DeleteNetwork(ctx, "apibr0"); err != nil {
		t.Fatal(err)
	}
	failsWith(t, c.DeleteNetwork(ctx, "apibr0"), http.StatusNotFound, "apibr0")

	// An image: out, deleted, and back in under another alias; what is not
	// an image, or not the one announced, is refused and leaves nothing.
	rc, err := c.ExportImage(ctx, "tiny", "gzip")
	if err != nil {
		t.Fatal(err)
	}
	exported, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(exported) == 0 {
		t.Fatalf("export: %d bytes, %v", len(exported), err)
	}
	_, err = c.ExportImage(ctx, "tiny", "lzma")
	failsWith(t, err, http.StatusBadRequest, "lzma")
	must(t)(c.DeleteImage(ctx, "tiny"))
	if imgs := e.cliJSON([]api.Image{}, "image", "list").([]api.Image); len(imgs) != 0 {
		t.Fatalf("silo image list after a delete through the API: %+v", imgs)
	}
	_, _, err = c.ImportImage(ctx, bytes.NewReader(exported), strings.Repeat("0", 64), nil)
	failsWith(t, err, http.StatusBadRequest, "fingerprint mismatch")
	_, _, err = c.ImportImage(ctx, strings.NewReader("not an image"), "", []string{"junk"})
	if err == nil || errkind.Of(err) != errkind.Invalid {
		t.Fatalf("a junk upload: %v", err)
	}
	img, _, err := c.ImportImage(ctx, bytes.NewReader(exported), "", []string{"back"})
	if err != nil || img.Layout != "unified" || len(img.Aliases) != 1 || img.Aliases[0].Name != "back" {
		t.Fatalf("upload: %+v, %v", img, err)
	}
	if imgs := e.cliJSON([]api.Image{}, "image", "list").([]api.Image); len(imgs) != 1 || imgs[0].Fingerprint != img.Fingerprint {
		t.Fatalf("silo image list after an upload: %+v", imgs)
	}
	e.ok("create", "back", "from-upload")
	e.ok("delete", "from-upload")
}
