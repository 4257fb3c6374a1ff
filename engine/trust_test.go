package engine

import (
	"context"
	"crypto/x509"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/trust"
)

// A token lets one client in, once; a secret never issued, a spent one and
// an expired one are each refused with their reason, and trust nothing.
func TestTrustTokens(t *testing.T) {
	ctx := context.Background()
	e, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert := func(name string) *x509.Certificate {
		dir := t.TempDir()
		pair, err := trust.KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return pair.Leaf
	}
	laptop, thief := cert("laptop"), cert("thief")
	if err := e.SetServerConfig(ctx, map[string]string{KeyHTTPSAddress: "192.0.2.2:8443"}, nil); err != nil {
		t.Fatal(err)
	}
	tok, err := e.CreateTrustToken(ctx, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := e.ServerCertificate()
	if tok.Fingerprint != trust.Fingerprint(srv.Certificate[0]) || len(tok.Addresses) != 1 || tok.Addresses[0] != "192.0.2.2:8443" {
		t.Fatalf("token %+v", tok)
	}
	refused := func(secret string, c *x509.Certificate, why string) {
		t.Helper()
		_, err := e.AddTrustedByToken(ctx, secret, c)
		if errkind.Of(err) != errkind.Invalid || !strings.Contains(err.Error(), why) {
			t.Fatalf("got %v, want an Invalid error saying %q", err, why)
		}
	}
	refused(strings.Repeat("0", 64), thief, "no such token")
	added, err := e.AddTrustedByToken(ctx, tok.Secret, laptop)
	if err != nil || added.Name != "laptop" {
		t.Fatalf("%+v %v", added, err)
	}
	refused(tok.Secret, thief, "already used")

	if err := e.SetServerConfig(ctx, map[string]string{KeyTokenExpiry: "1ms"}, nil); err != nil {
		t.Fatal(err)
	}
	old, err := e.CreateTrustToken(ctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	refused(old.Secret, thief, "expired")

	if ok, _ := e.IsTrusted(ctx, trust.Fingerprint(thief.Raw)); ok {
		t.Fatal("a refused client is trusted")
	}
	if ok, _ := e.IsTrusted(ctx, trust.Fingerprint(laptop.Raw)); !ok {
		t.Fatal("the client the token let in is not trusted")
	}
	// The store keeps no secret, only its hash.
	_ = e.store.View(func(tx *store.Tx) error {
		toks, _ := tx.Tokens()
		for _, r := range toks {
			if r.SecretHash == tok.Secret || r.SecretHash == old.Secret {
				t.Error("a secret is stored as it is")
			}
		}
		return nil
	})
	if _, err := e.RemoveTrusted(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.IsTrusted(ctx, trust.Fingerprint(laptop.Raw)); ok {
		t.Fatal("a removed client is still trusted")
	}
}

func TestParseExpiry(t *testing.T) {
	for in, want := range map[string]time.Duration{"10m": 10 * time.Minute, "1H": time.Hour, "2d": 48 * time.Hour, "30S": 30 * time.Second} {
		if got, err := parseExpiry(in); err != nil || got != want {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1h", "0", "1x", "d"} {
		if _, err := parseExpiry(bad); err == nil {
			t.Errorf("parseExpiry(%q) accepted", bad)
		}
	}
}

// A server that listens on every address gives its clients each global
// one, with the port; a set address is given alone.
func TestListenAddresses(t *testing.T) {
	got, err := listenAddresses("192.0.2.2:8443")
	if err != nil || len(got) != 1 || got[0] != "192.0.2.2:8443" {
		t.Fatalf("%v %v", got, err)
	}
	for _, listen := range []string{":8443", "0.0.0.0:8443", "[::]:8443"} {
		got, err := listenAddresses(listen)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range got {
			host, port, _ := net.SplitHostPort(a)
			ip, perr := netip.ParseAddr(host)
			if port != "8443" || perr != nil || !ip.IsGlobalUnicast() {
				t.Errorf("%s: %s is not a global address with the port", listen, a)
			}
		}
	}
	if got, _ := listenAddresses(""); got != nil {
		t.Fatalf("no address set: %v", got)
	}
}
