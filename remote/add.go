package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/trust"
)

// Add makes the server at addr (or, with addr empty, at the first of the
// token's addresses that answers) trust this client, and remembers it as
// name. The server's certificate is pinned from the token's fingerprint
// before anything is sent: a server whose certificate does not match is
// refused, and nothing is saved.
func (c *Config) Add(ctx context.Context, name, addr, token string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if c.Has(name) {
		return errkind.Wrap(errkind.AlreadyExists, "remote %q already exists", name)
	}
	tok, err := trust.ParseToken(token)
	if err != nil {
		return err
	}
	addrs := tok.Addresses
	if addr != "" {
		addrs = []string{addr}
	}
	if len(addrs) == 0 {
		return errkind.Wrap(errkind.Invalid, "the token names no address: give the remote's, https://HOST:PORT")
	}
	cert, err := c.ClientCertificate()
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range addrs {
		url, err := checkAddr(a)
		if err != nil {
			return err
		}
		// The pin is checked before a byte is sent; the certificate it
		// passed is the one kept.
		cfg := trust.ClientConfig(cert, tok.Fingerprint)
		var der []byte
		pin := cfg.VerifyPeerCertificate
		cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			if err := pin(raw, chains); err != nil {
				return err
			}
			der = raw[0]
			return nil
		}
		err = client.NewTLS(url, cfg).AddCertificate(ctx, api.CertificatesPost{Type: api.CertificateTypeClient, TrustToken: token})
		var mismatch *trust.MismatchError
		var refused *client.Error
		switch {
		case errors.As(err, &mismatch):
			return errkind.Wrap(errkind.Invalid, "remote %s not added: %s: %w", name, url, mismatch)
		case errors.As(err, &refused) && refused.Code == http.StatusConflict:
			// Trusted already (a remote removed here, then added again):
			// the token is left unspent, and the remote works.
		case errors.As(err, &refused):
			// The server answered: the token is at fault, not the address.
			return errkind.Wrap(errkind.Invalid, "remote %s not added: %s: %w", name, url, err)
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", url, err))
			continue
		}
		if err := trust.WriteCert(c.serverCertPath(name), der); err != nil {
			return err
		}
		c.Remotes[name] = &Remote{Addr: url, Protocol: "silo"}
		return c.Save()
	}
	return fmt.Errorf("remote %s not added: %w", name, errors.Join(errs...))
}

// Client connects to the remote called name.
func (c *Config) Client(name string) (*client.Client, error) {
	cfg, err := c.TLS(name)
	if err != nil {
		return nil, err
	}
	return client.NewTLS(c.Remotes[name].Addr, cfg), nil
}
