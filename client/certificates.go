package client

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/silo-dev/silo/api"
)

// NewTLS returns a client of the server at base (https://host:port) over
// mutual TLS with cfg, which holds the client's certificate and pins the
// server's.
func NewTLS(base string, cfg *tls.Config) *Client {
	// A host that does not answer is given up on in seconds: remote add
	// tries each address a token names in turn.
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{TLSClientConfig: cfg, DialContext: dialer.DialContext, MaxIdleConnsPerHost: 16,
		IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	return New(base, &http.Client{Transport: tr})
}

// Certificates lists the client certificates the server trusts.
func (c *Client) Certificates(ctx context.Context) ([]*api.Certificate, error) {
	return listOf[*api.Certificate](ctx, c, api.Version+"/certificates")
}

// AddCertificate asks the server to trust a client: with req.TrustToken,
// the client this one connects as; from a trusted client, req.Certificate.
func (c *Client) AddCertificate(ctx context.Context, req api.CertificatesPost) error {
	_, _, err := c.do(ctx, http.MethodPost, api.Version+"/certificates", nil, req, nil, nil)
	return err
}

// DeleteCertificate stops the server trusting the certificate with this
// fingerprint.
func (c *Client) DeleteCertificate(ctx context.Context, fingerprint string) error {
	_, _, err := c.do(ctx, http.MethodDelete, api.Path("certificates", fingerprint), nil, nil, nil, nil)
	return err
}

// CreateTrustToken has the server make a trust token for a client called
// name, as `silo config trust add` on the server would.
func (c *Client) CreateTrustToken(ctx context.Context, name string) (*api.CertificateAddToken, error) {
	var tok api.CertificateAddToken
	_, _, err := c.do(ctx, http.MethodPost, api.Version+"/certificates", nil, api.CertificatesPost{Name: name, Token: true}, nil, &tok)
	return &tok, err
}
