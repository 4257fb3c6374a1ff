package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: trust.ClientConfig(cert, tok.Fingerprint)}}
	defer hc.CloseIdleConnections()
	var errs []error
	for _, a := range addrs {
		url, err := checkAddr(a)
		if err != nil {
			return err
		}
		der, err := presentToken(ctx, hc, url, tok.Secret)
		var mismatch *trust.MismatchError
		switch {
		case errors.As(err, &mismatch):
			return errkind.Wrap(errkind.Invalid, "remote %s not added: %s: %w", name, url, mismatch)
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

// presentToken posts the token's secret to the server's trust endpoint,
// and returns the server's certificate.
func presentToken(ctx context.Context, hc *http.Client, url, secret string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"type": "client", "trust_token": secret})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/1.0/certificates", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var env struct {
			Error string `json:"error"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(data, &env) != nil || env.Error == "" {
			env.Error = resp.Status
		}
		kind := errkind.Unavailable
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest {
			kind = errkind.Invalid
		}
		return nil, errkind.Wrap(kind, "the server refused: %s", env.Error)
	}
	return resp.TLS.PeerCertificates[0].Raw, nil
}
