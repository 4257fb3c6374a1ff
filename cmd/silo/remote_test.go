package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/trust"
)

// Two hosts, each a state directory in a network namespace of its own,
// joined by a veth: h1 at 198.51.100.1, h2 at 198.51.100.2. Nothing
// leaves the machine.
const h2Addr = "198.51.100.2:8443"

func twoHosts(t *testing.T) (h1, h2 *env) {
	h1, h2 = newEnv(t, "dir"), bootEnv(t, "dir")
	join(t, h1, h2)
	return h1, h2
}

// join makes h1 and h2 two hosts, as twoHosts says.
func join(t *testing.T, h1, h2 *env) {
	ip(t, h1.netns, "link", "add", "rt-h1", "type", "veth", "peer", "name", "rt-h2", "netns", h2.netns)
	ip(t, h1.netns, "addr", "add", "198.51.100.1/24", "dev", "rt-h1")
	ip(t, h1.netns, "link", "set", "rt-h1", "up")
	ip(t, h2.netns, "addr", "add", "198.51.100.2/24", "dev", "rt-h2")
	ip(t, h2.netns, "link", "set", "rt-h2", "up")
	h1.extra = append(h1.extra, "SILO_CONF="+t.TempDir())
}

// token makes a trust token on e for client name.
func (e *env) token(name string) string {
	e.t.Helper()
	lines := strings.Split(strings.TrimSpace(e.ok("config", "trust", "add", name)), "\n")
	return lines[len(lines)-1]
}

// rawClient talks HTTPS to h2 from ns as a client with cert (none if
// nil), pinning h2's certificate.
func rawClient(t *testing.T, ns string, cert *tls.Certificate, fingerprint string) *http.Client {
	cfg := trust.ClientConfig(tls.Certificate{}, fingerprint)
	cfg.Certificates = nil
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return dialIn(ns, network, addr) }}}
}

// call sends a request and returns the status and the envelope.
func call(t *testing.T, hc *http.Client, method, path, body string) (int, api.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, "https://"+h2Addr+path, strings.NewReader(body))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var env api.Response
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, env
}

// A client is trusted by token, once; without one, with a spent, an
// expired or a wrong one, or with the server's certificate not the one
// its token names, it gets nothing but /1.0, and the server keeps
// serving. A trusted client lists and drives h2's instances through TLS.
func TestRemoteTrustAndList(t *testing.T) {
	h1, h2 := twoHosts(t)
	h2.ok("config", "set", "core.https_address", h2Addr)
	if got := strings.TrimSpace(h2.ok("config", "get", "core.https_address")); got != h2Addr {
		t.Fatalf("core.https_address is %q", got)
	}
	h2.serve()
	h2.launch("bb", "web")
	serverCert, err := trust.ReadCert(filepath.Join(h2.state, "server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	fp := trust.Fingerprint(serverCert.Raw)

	// An untrusted client: /1.0 says so, the rest is forbidden.
	dir := t.TempDir()
	stranger, err := trust.KeyPair(filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range []*http.Client{rawClient(t, h1.netns, &stranger, fp), rawClient(t, h1.netns, nil, fp)} {
		if code, env := call(t, hc, "GET", "/1.0", ""); code != 200 || env.Metadata.(map[string]any)["auth"] != "untrusted" {
			t.Fatalf("GET /1.0 untrusted: %d %+v", code, env)
		}
		for _, path := range []string{"/1.0/instances", "/1.0/certificates"} {
			if code, env := call(t, hc, "GET", path, ""); code != 403 || !strings.Contains(env.Error, "not trusted") {
				t.Fatalf("GET %s untrusted: %d %q", path, code, env.Error)
			}
		}
		if code, env := call(t, hc, "POST", "/1.0/certificates", `{"type":"client"}`); code != 403 {
			t.Fatalf("POST /1.0/certificates with no token: %d %q", code, env.Error)
		}
		if code, env := call(t, hc, "POST", "/1.0/certificates", `{"name":"x","token":true}`); code != 403 {
			t.Fatalf("POST /1.0/certificates asking for a token, untrusted: %d %q", code, env.Error)
		}
	}
	hc := rawClient(t, h1.netns, &stranger, fp)
	if code, env := call(t, hc, "POST", "/1.0/certificates", `{"trust_token":"`+strings.Repeat("0", 64)+`"}`); code != 403 || !strings.Contains(env.Error, "no such token") {
		t.Fatalf("POST /1.0/certificates with a wrong token: %d %q", code, env.Error)
	}
	// TLS 1.2 is refused at the handshake.
	old := rawClient(t, h1.netns, &stranger, fp)
	old.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
	if _, err := old.Get("https://" + h2Addr + "/1.0"); err == nil {
		t.Fatal("a TLS 1.2 client was served")
	}

	// Not a remote yet: bad tokens, and a server that is not the token's.
	h1.fails(2, "trust token", "remote", "add", "h2", "https://"+h2Addr, "--token", "garbage")
	h1.fails(2, "give the server's trust token", "remote", "add", "h2")
	tok := h2.token("h1")
	forged, _ := trust.ParseToken(tok)
	forged.Fingerprint = trust.Fingerprint(stranger.Certificate[0])
	h1.fails(2, "is not the one expected", "remote", "add", "h2", "https://"+h2Addr, "--token", forged.String())
	if out := h1.ok("remote", "list"); strings.Contains(out, "h2") {
		t.Fatalf("a refused remote is listed:\n%s", out)
	}
	// The forged attempt sent nothing: the token is still good.
	h1.ok("remote", "add", "h2", "https://"+h2Addr, "--token", tok)
	var remotes []struct{ Name, Addr string }
	h1.json(&remotes, "remote", "list")
	if len(remotes) != 2 || remotes[1].Name != "h2" || remotes[1].Addr != "https://"+h2Addr {
		t.Fatalf("remotes: %+v", remotes)
	}

	// A trusted client reads the trust list, and trusts another client
	// by its certificate, then takes that trust back.
	conf := strings.TrimPrefix(h1.extra[len(h1.extra)-1], "SILO_CONF=")
	mine, err := trust.KeyPair(filepath.Join(conf, "client.crt"), filepath.Join(conf, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	trustedHC := rawClient(t, h1.netns, &mine, fp)
	if code, env := call(t, trustedHC, "GET", "/1.0/certificates?recursion=1", ""); code != 200 || len(env.Metadata.([]any)) != 1 {
		t.Fatalf("GET /1.0/certificates: %d %+v", code, env)
	}
	strangerFP := trust.Fingerprint(stranger.Certificate[0])
	body := `{"name":"stranger","certificate":"` + base64.StdEncoding.EncodeToString(stranger.Certificate[0]) + `"}`
	if code, env := call(t, trustedHC, "POST", "/1.0/certificates", body); code != 201 {
		t.Fatalf("POST /1.0/certificates by a trusted client: %d %q", code, env.Error)
	}
	if code, env := call(t, hc, "GET", "/1.0/instances", ""); code != 200 {
		t.Fatalf("GET /1.0/instances by a client trusted by certificate: %d %q", code, env.Error)
	}
	if code, env := call(t, trustedHC, "DELETE", "/1.0/certificates/"+strangerFP, ""); code != 200 {
		t.Fatalf("DELETE /1.0/certificates/%s: %d %q", strangerFP, code, env.Error)
	}
	if code, _ := call(t, hc, "GET", "/1.0/instances", ""); code != 403 {
		t.Fatalf("GET /1.0/instances by a client no longer trusted: %d", code)
	}

	// A spent token and an expired one let no other client in.
	other := *h1
	other.extra = []string{"SILO_CONF=" + t.TempDir()}
	other.fails(2, "already used", "remote", "add", "h2", "--token", tok)
	h2.ok("config", "set", "core.remote_token_expiry", "1S")
	late := h2.token("late")
	time.Sleep(1100 * time.Millisecond)
	other.fails(2, "expired", "remote", "add", "h2", "--token", late)
	h2.ok("config", "unset", "core.remote_token_expiry")
	var trusted []api.Certificate
	h2.json(&trusted, "config", "trust", "list")
	if len(trusted) != 1 || trusted[0].Name != "h1" {
		t.Fatalf("trusted: %+v", trusted)
	}

	// Through the remote: h2's instances, not h1's.
	var insts []api.Instance
	h1.json(&insts, "list", "h2:")
	if len(insts) != 1 || insts[0].Name != "web" || insts[0].StatusCode != api.Running {
		t.Fatalf("list h2: %+v", insts)
	}
	if out := h1.ok("list"); strings.Contains(out, "web") {
		t.Fatalf("h1's own list shows h2's instance:\n%s", out)
	}
	if out := h1.ok("info", "h2:web"); !strings.Contains(out, "Name:") || !strings.Contains(out, "web") {
		t.Fatalf("info h2:web:\n%s", out)
	}
	h1.fails(3, "not found", "info", "h2:nope")
	// Exec through the remote: its output and exit code, its input, and a
	// terminal with -t.
	if r := h1.run("exec", "h2:web", "--", "sh", "-c", "echo hi; echo there >&2; exit 4"); r.code != 4 || r.out != "hi\n" || r.err != "there\n" {
		t.Fatalf("exec h2:web: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	if out := h1.runInOK([]byte("piped\n"), "exec", "h2:web", "--", "cat"); out != "piped\n" {
		t.Fatalf("exec h2:web with input: %q", out)
	}
	if r := h1.run("exec", "-t", "h2:web", "--", "sh", "-c", "tty; exit 2"); r.code != 2 || !strings.HasPrefix(r.out, "/dev/pts/") {
		t.Fatalf("exec -t h2:web: exit %d, %q, %q", r.code, r.out, r.err)
	}
	h1.shellOnTerminal("h2:web")
	h1.fails(3, "not found", "exec", "h2:nope", "--", "true")
	// Files both ways, with their mode.
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("to h2\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	h1.ok("file", "push", src, "h2:web/etc/f", "--mode", "4750")
	if got := h2.sh("web", "stat -c %a /etc/f; cat /etc/f"); got != "4750\nto h2\n" {
		t.Fatalf("pushed through h2: %q", got)
	}
	back := filepath.Join(t.TempDir(), "back")
	h1.ok("file", "pull", "h2:web/etc/f", back)
	if data, err := os.ReadFile(back); err != nil || string(data) != "to h2\n" {
		t.Fatalf("pulled back: %q %v", data, err)
	}
	if got := h1.ok("file", "pull", "h2:web/etc/f", "-"); got != "to h2\n" {
		t.Fatalf("pulled to stdout: %q", got)
	}
	h1.fails(3, "not found", "file", "pull", "h2:web/etc/nope", "-")
	h1.ok("config", "set", "h2:web", "user.note=hi")
	if out := h1.ok("config", "show", "h2:web"); !strings.Contains(out, "user.note: hi") {
		t.Fatalf("config show h2:web:\n%s", out)
	}
	h1.ok("config", "unset", "h2:web", "user.note")
	if out := h2.ok("config", "show", "local:web"); strings.Contains(out, "user.note") {
		t.Fatalf("user.note still set on h2:\n%s", out)
	}
	h1.fails(2, "server config is not served", "config", "set", "h2:", "core.https_address", ":8443")
	h1.ok("snapshot", "create", "h2:web", "s1", "--expiry", "2d")
	h2.ok("config", "set", "web", "snapshots.expiry=1w")
	h1.ok("snapshot", "create", "h2:web", "s2", "--no-expiry")
	h1.fails(2, "not both", "snapshot", "create", "h2:web", "s3", "--expiry", "1d", "--no-expiry")
	var snaps []api.InstanceSnapshot
	h1.json(&snaps, "snapshot", "list", "h2:web")
	if len(snaps) != 2 || snaps[0].Name != "s1" || snaps[1].Name != "s2" {
		t.Fatalf("snapshots of h2:web: %+v", snaps)
	}
	// The expiry crosses the wire as a time, as LXD's API has it.
	if left := time.Until(snaps[0].ExpiresAt); left < 47*time.Hour || left > 48*time.Hour || !snaps[1].ExpiresAt.IsZero() {
		t.Fatalf("expiries of h2:web's snapshots: %+v", snaps)
	}
	h2.ok("config", "unset", "web", "snapshots.expiry")
	parseMetrics(t, h1.ok("metrics", "h2:"))
	h1.fails(2, "usage", "metrics", "h2:web")
	h1.ok("create", "bb", "h2:web2")
	// --no-network hides the profiles' nics on the remote as here.
	h1.ok("create", "bb", "h2:quiet", "--no-network")
	if d := h2.device("quiet", "eth0"); d["type"] != "none" {
		t.Fatalf("quiet's eth0 on h2 after create --no-network: %v", d)
	}
	h2.ok("delete", "quiet")
	h1.ok("create", "bb", "h2:netted", "--network", store.DefaultNetwork)
	if d := h2.device("netted", "eth0"); d["type"] != "nic" || d["network"] != store.DefaultNetwork {
		t.Fatalf("netted's eth0 on h2 after create --network: %v", d)
	}
	h2.ok("delete", "netted")
	h1.fails(3, `network "nope" not found`, "create", "bb", "h2:n2", "--network", "nope")
	h1.fails(2, "give one", "create", "bb", "h2:n2", "--network", "nope", "--no-network")
	// --wait returns once init has booted: h2's exec works at once.
	h1.ok("start", "h2:web2", "--wait")
	if s := h2.status("web2"); s.State != "running" {
		t.Fatalf("web2 on h2 is %s", s.State)
	}
	h2.ok("exec", "web2", "--", "true")
	h1.ok("wait", "h2:web2", "--timeout", "30s")
	// A failed operation keeps its kind across the wire, and its exit code.
	h1.fails(5, "is running", "delete", "h2:web2")
	h1.fails(3, "not found", "start", "h2:nope")
	h1.ok("stop", "h2:web2", "--force")
	h1.fails(5, "is not running", "wait", "h2:web2")
	h1.ok("rename", "h2:web2", "h2:web3")
	h1.fails(2, "stays on one host", "rename", "h2:web3", "local:web4")
	h1.ok("delete", "h2:web3")
	if s := h2.status("web3"); s.State != "absent" {
		t.Fatalf("web3 on h2 is %s after delete", s.State)
	}
	// The other collections list through the remote as here.
	var imgs []api.Image
	h1.json(&imgs, "image", "list", "h2:")
	if len(imgs) != 1 || len(imgs[0].Aliases) != 1 || imgs[0].Aliases[0].Name != "bb" {
		t.Fatalf("image list h2: %+v", imgs)
	}
	// Images both ways, with their aliases.
	h1.ok("image", "copy", "h2:bb", "local:", "--copy-aliases")
	var ours []api.Image
	h1.json(&ours, "image", "list")
	if len(ours) != 1 || len(ours[0].Aliases) != 1 || ours[0].Aliases[0].Name != "bb" {
		t.Fatalf("image copied from h2: %+v", ours)
	}
	h1.ok("image", "copy", "bb", "h2:", "--alias", "bb2")
	h1.json(&imgs, "image", "list", "h2:")
	if !slices.ContainsFunc(imgs, func(i api.Image) bool { return len(i.Aliases) == 1 && i.Aliases[0].Name == "bb2" }) {
		t.Fatalf("image copied to h2: %+v", imgs)
	}
	h1.fails(2, "already", "image", "copy", "h2:bb", "h2:")
	// launch and create take a local image to the remote that lacks it,
	// as lxc does: once, and then by its fingerprint.
	busybox := filepath.Join(t.TempDir(), "bb.tar.zst")
	if err := os.WriteFile(busybox, rootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	h1.ok("image", "import", busybox, "--alias", "tiny")
	h1.ok("create", "tiny", "h2:web5")
	h1.ok("create", "tiny", "h2:web6")
	h1.json(&imgs, "image", "list", "h2:")
	if len(imgs) != 3 {
		t.Fatalf("h2's images after two creates from one local image: %+v", imgs)
	}
	h1.ok("delete", "h2:web5")
	h1.ok("delete", "h2:web6")
	h1.fails(3, "neither on the remote nor here", "create", "nope", "h2:web7")
	h1.fails(2, "the target is a host", "image", "copy", "bb", "h2:x")
	h1.fails(3, "not found", "image", "copy", "h2:nope", "local:")
	for _, coll := range []string{"pool", "profile", "network"} {
		var here, there []map[string]any
		h2.json(&here, coll, "list")
		h1.json(&there, coll, "list", "h2:")
		if len(there) == 0 || len(there) != len(here) || there[0]["name"] != here[0]["name"] {
			t.Fatalf("%s list h2: %v, on h2: %v", coll, there, here)
		}
	}
	// The default remote: names without one go to h2.
	h1.ok("remote", "switch", "h2")
	t.Cleanup(func() { h1.run("remote", "switch", "local") }) // for the teardown, should the test stop first
	if strings.TrimSpace(h1.ok("remote", "get-default")) != "h2" {
		t.Fatal("get-default is not h2")
	}
	h1.json(&insts, "list")
	if len(insts) != 1 || insts[0].Name != "web" {
		t.Fatalf("list with h2 the default: %+v", insts)
	}
	h1.json(&insts, "list", "local:")
	if len(insts) != 0 {
		t.Fatalf("list local: %+v", insts)
	}
	h1.ok("remote", "rename", "h2", "hb")
	if strings.TrimSpace(h1.ok("remote", "get-default")) != "hb" {
		t.Fatal("the default remote did not follow its rename")
	}
	h1.json(&insts, "list", "hb:")
	h1.fails(4, "built in", "remote", "rename", "hb", "local")
	h1.ok("remote", "rename", "hb", "h2")
	h1.ok("remote", "switch", "local")
	if out := h2.ok("info", "local:web"); !strings.Contains(out, "web") {
		t.Fatalf("info local:web on h2:\n%s", out)
	}

	// A remote added with no address, the token in its place as incus
	// takes it, reaches the server at the token's address.
	other.ok("remote", "add", "h2", h2.token("other"))
	other.json(&insts, "list", "h2:")
	if len(insts) != 1 {
		t.Fatalf("list h2: from the other client: %+v", insts)
	}

	// The listener follows core.https_address while the server runs.
	h2.ok("config", "set", "core.https_address", "198.51.100.2:8444")
	eventually(t, "the listener moves to port 8444", func() bool {
		resp, err := hc.Get("https://198.51.100.2:8444/1.0")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	h1.fails(7, "connection refused", "list", "h2:")
	h2.ok("config", "set", "core.https_address", h2Addr)
	eventually(t, "the listener moves back to port 8443", func() bool { return h1.run("list", "h2:").code == 0 })

	// The trust list of h2, read and changed from h1.
	var theirs []api.Certificate
	h1.json(&theirs, "config", "trust", "list", "h2:")
	if len(theirs) != 2 || theirs[0].Name != "h1" || theirs[1].Name != "other" {
		t.Fatalf("config trust list h2: %+v", theirs)
	}
	h1.ok("config", "trust", "remove", "h2:other")
	other.fails(1, "not trusted", "list", "h2:")

	// A token made on h2 from h1, for a third client.
	out := strings.Split(strings.TrimSpace(h1.ok("config", "trust", "add", "h2:third")), "\n")
	third := *h1
	third.extra = []string{"SILO_CONF=" + t.TempDir()}
	third.ok("remote", "add", "h2", out[len(out)-1])
	third.json(&insts, "list", "h2:")

	// A remote removed and added again, its client still trusted: the
	// token is left unspent, and the remote works.
	h1.ok("remote", "remove", "h2")
	h1.ok("remote", "add", "h2", h2.token("again"))
	h1.json(&insts, "list", "h2:")
	var pending []struct {
		ClientName string `json:"client_name"`
	}
	h2.json(&pending, "config", "trust", "list-tokens")
	if len(pending) != 1 || pending[0].ClientName != "again" {
		t.Fatalf("pending tokens: %+v", pending)
	}
	h2.ok("config", "trust", "revoke-token", "again")
	h2.fails(3, "no pending trust token", "config", "trust", "revoke-token", "again")

	// Trust taken back: refused at once, and /1.0 still answers.
	h2.ok("config", "trust", "remove", "h1")
	h1.fails(1, "not trusted", "list", "h2:")
	if code, _ := call(t, hc, "GET", "/1.0", ""); code != 200 {
		t.Fatalf("GET /1.0 after the refusals: %d", code)
	}
	h1.ok("remote", "remove", "h2")
	h1.fails(3, "not found", "remote", "remove", "h2")
}
