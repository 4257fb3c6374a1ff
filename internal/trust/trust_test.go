package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyPairMadeOnceThenLoaded(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	a, err := KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(a.Certificate[0]) != Fingerprint(b.Certificate[0]) {
		t.Fatal("a second KeyPair made a new certificate")
	}
	// A certificate whose key a crash kept from being written is made anew.
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	c, err := KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(c.Certificate[0]) == Fingerprint(a.Certificate[0]) {
		t.Fatal("a certificate without its key was kept")
	}
	if k, ok := a.Leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Fatalf("key is %s", a.Leaf.PublicKeyAlgorithm)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	tok := &Token{ClientName: "laptop", Fingerprint: "ab", Addresses: []string{"192.0.2.2:8443"}, Secret: "s"}
	got, err := ParseToken(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientName != "laptop" || got.Secret != "s" || got.Addresses[0] != "192.0.2.2:8443" {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"", "!!!", "bm90IGpzb24=", "e30="} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}

// A client talks to the server whose fingerprint it pinned, and to no
// other: the handshake fails with a MismatchError.
func TestClientPinsServer(t *testing.T) {
	dir := t.TempDir()
	srv, _ := KeyPair(filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key"))
	other, _ := KeyPair(filepath.Join(dir, "o.crt"), filepath.Join(dir, "o.key"))
	cli, _ := KeyPair(filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil && len(tc.ConnectionState().PeerCertificates) > 0 {
				peers <- Fingerprint(tc.ConnectionState().PeerCertificates[0].Raw)
			}
			c.Close()
		}
	}()
	dial := func(pin string) error {
		c, err := tls.DialWithDialer(&net.Dialer{}, "tcp", ln.Addr().String(), ClientConfig(cli, pin))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(Fingerprint(srv.Certificate[0])); err != nil {
		t.Fatalf("pinned server refused: %v", err)
	}
	if got := <-peers; got != Fingerprint(cli.Certificate[0]) {
		t.Fatalf("server saw client %s", got)
	}
	var mismatch *MismatchError
	if err := dial(Fingerprint(other.Certificate[0])); !errors.As(err, &mismatch) {
		t.Fatalf("a server with another certificate: %v, want a MismatchError", err)
	}
}
