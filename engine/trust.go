package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/trust"
)

// The server's config keys, set with `silo config set KEY VALUE`.
const (
	// KeyHTTPSAddress is where the server listens for remotes, host:port.
	KeyHTTPSAddress = "core.https_address"
	// KeyTokenExpiry is how long a trust token lasts (Go duration, or
	// Incus's 1M, 2H, 3d...); unset, tokens last until used.
	KeyTokenExpiry = "core.remote_token_expiry"
)

// IsServerKey says whether key belongs to the server rather than to an
// instance: LXD's lxc tells them apart the same way.
func IsServerKey(key string) bool { return strings.HasPrefix(key, "core.") }

// checkServerConfig refuses a key the server does not know, or a value it
// could not use.
func checkServerConfig(key, value string) error {
	if value == "" {
		return nil
	}
	switch key {
	case KeyHTTPSAddress:
		if _, _, err := splitListen(value); err != nil {
			return err
		}
	case KeyTokenExpiry:
		if _, err := parseExpiry(value); err != nil {
			return err
		}
	default:
		return errkind.Wrap(errkind.Invalid, "unknown server config key %q (known: %s, %s)", key, KeyHTTPSAddress, KeyTokenExpiry)
	}
	return nil
}

// splitListen reads host:port, the host optional (all addresses).
func splitListen(addr string) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", errkind.Wrap(errkind.Invalid, "%s %q: write host:port, e.g. 192.0.2.2:8443 or :8443", KeyHTTPSAddress, addr)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", "", errkind.Wrap(errkind.Invalid, "%s %q: %q is not an IP address", KeyHTTPSAddress, addr, host)
		}
	}
	return host, port, nil
}

// parseExpiry reads a Go duration, or Incus's form: a number and one of
// S, M (minutes), H, d, w, m (months), y.
func parseExpiry(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	units := map[byte]time.Duration{'S': time.Second, 'M': time.Minute, 'H': time.Hour, 'd': 24 * time.Hour,
		'w': 7 * 24 * time.Hour, 'm': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if len(s) > 1 {
		var n int
		if _, err := fmt.Sscanf(s[:len(s)-1], "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == s[:len(s)-1] {
			if u, ok := units[s[len(s)-1]]; ok {
				return time.Duration(n) * u, nil
			}
		}
	}
	return 0, errkind.Wrap(errkind.Invalid, "%s %q: write a duration such as 10m, 1H or 2d", KeyTokenExpiry, s)
}

// ServerConfig returns the server's config keys.
func (e *Engine) ServerConfig(ctx context.Context) (cfg map[string]string, err error) {
	err = e.store.View(func(tx *store.Tx) error {
		cfg, err = tx.ServerConfig()
		return err
	})
	return cfg, err
}

// SetServerConfig sets the keys of set and removes those of unset, all or
// none. A running server follows a new address by itself.
func (e *Engine) SetServerConfig(ctx context.Context, set map[string]string, unset []string) error {
	for k, v := range set {
		if err := checkServerConfig(k, v); err != nil {
			return err
		}
	}
	for _, k := range unset {
		if err := checkServerConfig(k, ""); err != nil {
			return err
		}
	}
	return e.store.Update(func(tx *store.Tx) error {
		for k, v := range set {
			if err := tx.SetServerConfig(k, v); err != nil {
				return err
			}
		}
		for _, k := range unset {
			if err := tx.SetServerConfig(k, ""); err != nil {
				return err
			}
		}
		return nil
	})
}

// ServerCertificate is the server's key pair, made in the state directory
// the first time it is needed.
func (e *Engine) ServerCertificate() (tls.Certificate, error) {
	return trust.KeyPair(e.path("server.crt"), e.path("server.key"))
}

// CreateTrustToken makes a one-time token that lets a client called name
// in: it carries the server's fingerprint and addresses and a secret, of
// which the store keeps only the hash.
func (e *Engine) CreateTrustToken(ctx context.Context, name string) (*trust.Token, error) {
	if err := checkName("client", name); err != nil {
		return nil, err
	}
	cert, err := e.ServerCertificate()
	if err != nil {
		return nil, err
	}
	cfg, err := e.ServerConfig(ctx)
	if err != nil {
		return nil, err
	}
	addrs, err := listenAddresses(cfg[KeyHTTPSAddress])
	if err != nil {
		return nil, err
	}
	secret, err := trust.NewSecret()
	if err != nil {
		return nil, err
	}
	tok := &trust.Token{ClientName: name, Fingerprint: trust.Fingerprint(cert.Certificate[0]), Addresses: addrs, Secret: secret}
	rec := &store.Token{SecretHash: trust.HashSecret(secret), ClientName: name, Created: time.Now().UTC()}
	if v := cfg[KeyTokenExpiry]; v != "" {
		d, err := parseExpiry(v)
		if err != nil {
			return nil, err
		}
		tok.ExpiresAt = rec.Created.Add(d)
		rec.ExpiresAt = tok.ExpiresAt
	}
	if err := e.store.Update(func(tx *store.Tx) error { return tx.PutToken(rec) }); err != nil {
		return nil, err
	}
	return tok, nil
}

// listenAddresses are the host:port a client may reach the server at: the
// configured one, or every global address of the host when the server
// listens on all of them. None when the server has no HTTPS address yet.
func listenAddresses(listen string) ([]string, error) {
	if listen == "" {
		return nil, nil
	}
	host, port, err := splitListen(listen)
	if err != nil {
		return nil, err
	}
	if ip, _ := netip.ParseAddr(host); host != "" && !ip.IsUnspecified() {
		return []string{net.JoinHostPort(host, port)}, nil
	}
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() {
			out = append(out, net.JoinHostPort(p.Addr().String(), port))
		}
	}
	return out, nil
}

// AddTrustedByToken trusts cert under the name its token was made for,
// and spends the token. A secret never issued, one already used and one
// expired are each refused with their own reason.
func (e *Engine) AddTrustedByToken(ctx context.Context, secret string, cert *x509.Certificate) (*api.Certificate, error) {
	var out *api.Certificate
	err := e.store.Update(func(tx *store.Tx) error {
		tok, err := tx.Token(trust.HashSecret(secret))
		if err != nil {
			return errkind.Wrap(errkind.Invalid, "trust token not valid: no such token")
		}
		now := time.Now().UTC()
		switch {
		case !tok.Used.IsZero():
			return errkind.Wrap(errkind.Invalid, "trust token for %q already used at %s", tok.ClientName, tok.Used.Format(time.RFC3339))
		case !tok.ExpiresAt.IsZero() && now.After(tok.ExpiresAt):
			return errkind.Wrap(errkind.Invalid, "trust token for %q expired at %s", tok.ClientName, tok.ExpiresAt.Format(time.RFC3339))
		}
		tok.Used = now
		if err := tx.PutToken(tok); err != nil {
			return err
		}
		out, err = addTrusted(tx, tok.ClientName, cert)
		return err
	})
	return out, err
}

// AddTrusted trusts cert under name, as an administrator or a trusted
// client asks.
func (e *Engine) AddTrusted(ctx context.Context, name string, cert *x509.Certificate) (*api.Certificate, error) {
	if err := checkName("client", name); err != nil {
		return nil, err
	}
	var out *api.Certificate
	err := e.store.Update(func(tx *store.Tx) (err error) {
		out, err = addTrusted(tx, name, cert)
		return err
	})
	return out, err
}

func addTrusted(tx *store.Tx, name string, cert *x509.Certificate) (*api.Certificate, error) {
	fp := trust.Fingerprint(cert.Raw)
	if _, err := tx.Certificate(fp); err == nil {
		return nil, errkind.Wrap(errkind.AlreadyExists, "certificate %.12s is already trusted", fp)
	}
	rec := &store.Certificate{Name: name, Fingerprint: fp, Certificate: trust.EncodeCert(cert.Raw), Added: time.Now().UTC()}
	if err := tx.PutCertificate(rec); err != nil {
		return nil, err
	}
	return certificateAPI(rec), nil
}

func certificateAPI(c *store.Certificate) *api.Certificate {
	return &api.Certificate{Name: c.Name, Type: api.CertificateTypeClient, Certificate: c.Certificate, Fingerprint: c.Fingerprint, AddedAt: c.Added}
}

// Trusted lists the trusted client certificates by name.
func (e *Engine) Trusted(ctx context.Context) ([]*api.Certificate, error) {
	out := []*api.Certificate{}
	err := e.store.View(func(tx *store.Tx) error {
		certs, err := tx.Certificates()
		for _, c := range certs {
			out = append(out, certificateAPI(c))
		}
		return err
	})
	slices.SortFunc(out, func(a, b *api.Certificate) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// IsTrusted says whether the certificate with this fingerprint is trusted.
func (e *Engine) IsTrusted(ctx context.Context, fingerprint string) (bool, error) {
	var ok bool
	err := e.store.View(func(tx *store.Tx) error {
		_, err := tx.Certificate(fingerprint)
		ok = err == nil
		return nil
	})
	return ok, err
}

// TrustedCertificate returns the trusted certificate named by ref: its
// fingerprint, a unique prefix of it, or its name.
func (e *Engine) TrustedCertificate(ctx context.Context, ref string) (*api.Certificate, error) {
	certs, err := e.Trusted(ctx)
	if err != nil {
		return nil, err
	}
	var found []*api.Certificate
	for _, c := range certs {
		if c.Fingerprint == ref || c.Name == ref || (len(ref) >= 8 && strings.HasPrefix(c.Fingerprint, ref)) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil, errkind.Wrap(errkind.NotFound, "trusted certificate %q not found", ref)
	case 1:
		return found[0], nil
	}
	return nil, errkind.Wrap(errkind.Invalid, "%q names %d trusted certificates: give the fingerprint", ref, len(found))
}

// RemoveTrusted stops trusting the certificate named by ref.
func (e *Engine) RemoveTrusted(ctx context.Context, ref string) (*api.Certificate, error) {
	c, err := e.TrustedCertificate(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c, e.store.Update(func(tx *store.Tx) error { return tx.DeleteCertificate(c.Fingerprint) })
}

// PendingToken is a trust token not yet used, as `config trust list-tokens`
// shows it: never its secret, which the store does not have.
type PendingToken struct {
	ClientName string    `json:"client_name"`
	Created    time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
}

// PendingTokens lists the tokens neither used nor expired.
func (e *Engine) PendingTokens(ctx context.Context) ([]PendingToken, error) {
	out := []PendingToken{}
	now := time.Now()
	err := e.store.View(func(tx *store.Tx) error {
		toks, err := tx.Tokens()
		for _, t := range toks {
			if t.Used.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)) {
				out = append(out, PendingToken{ClientName: t.ClientName, Created: t.Created, ExpiresAt: t.ExpiresAt})
			}
		}
		return err
	})
	slices.SortFunc(out, func(a, b PendingToken) int { return a.Created.Compare(b.Created) })
	return out, err
}

// RevokeTokens deletes the unused tokens made for client name, and says
// how many there were.
func (e *Engine) RevokeTokens(ctx context.Context, name string) (int, error) {
	n := 0
	err := e.store.Update(func(tx *store.Tx) error {
		toks, err := tx.Tokens()
		if err != nil {
			return err
		}
		for _, t := range toks {
			if t.ClientName == name && t.Used.IsZero() {
				if err := tx.DeleteToken(t.SecretHash); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 {
			return errkind.Wrap(errkind.NotFound, "no pending trust token for %q", name)
		}
		return nil
	})
	return n, err
}
