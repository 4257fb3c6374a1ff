package server

import (
	"crypto/x509"
	"net/http"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/trust"
)

func (s *Server) certificateRoutes() {
	s.Handle("GET /1.0/certificates", s.getCertificates, TrustedOnly)
	// Untrusted: a client not yet trusted presents its token here.
	s.Handle("POST /1.0/certificates", s.postCertificates, Untrusted)
	s.Handle("GET /1.0/certificates/{fingerprint}", s.getCertificate, TrustedOnly)
	s.Handle("DELETE /1.0/certificates/{fingerprint}", s.deleteCertificate, TrustedOnly)
}

// getCertificates lists the trusted clients: their paths, or with
// recursion=1 the certificates.
func (s *Server) getCertificates(e *engine.Engine, r *http.Request) Response {
	rec, err := recursion(r)
	if err != nil {
		return Error(err)
	}
	certs, err := e.Trusted(r.Context())
	if err != nil {
		return Error(err)
	}
	if rec > 0 {
		return Sync(certs)
	}
	paths := make([]string, 0, len(certs))
	for _, c := range certs {
		paths = append(paths, api.Path("certificates", c.Fingerprint))
	}
	return Sync(paths)
}

func (s *Server) getCertificate(e *engine.Engine, r *http.Request) Response {
	c, err := e.TrustedCertificate(r.Context(), r.PathValue("fingerprint"))
	if err != nil {
		return Error(err)
	}
	return Sync(c)
}

func (s *Server) deleteCertificate(e *engine.Engine, r *http.Request) Response {
	if _, err := e.RemoveTrusted(r.Context(), r.PathValue("fingerprint")); err != nil {
		return Error(err)
	}
	return EmptySync()
}

// postCertificates trusts a client. A trusted one may add any certificate
// (its own if it names none); an untrusted one only its own, with a trust
// token, which it spends.
func (s *Server) postCertificates(e *engine.Engine, r *http.Request) Response {
	var req api.CertificatesPost
	if err := Decode(r, &req); err != nil {
		return Error(err)
	}
	switch {
	case req.Type != "" && req.Type != api.CertificateTypeClient:
		return Errorf(http.StatusBadRequest, "certificate type %q: silo trusts client certificates only", req.Type)
	case req.Token:
		return s.postToken(e, r, req.Name)
	case req.Restricted || len(req.Projects) > 0:
		return Errorf(http.StatusBadRequest, "restricted, projects: silo has no projects")
	}
	if req.TrustToken == "" {
		req.TrustToken = req.Password
	}
	// LXD's and Incus's clients send the whole token; the secret in it is
	// what the store knows.
	if tok, err := trust.ParseToken(req.TrustToken); err == nil {
		req.TrustToken = tok.Secret
	}
	peer := peerCertificate(r)
	var (
		added *api.Certificate
		err   error
	)
	switch {
	case req.TrustToken != "" && req.Certificate != "":
		return Errorf(http.StatusBadRequest, "a trust token trusts the certificate the client connects with, not another")
	case req.TrustToken != "" && peer != nil:
		// Even from a trusted client: the token is spent on the
		// certificate it connects with, or refused.
		added, err = e.AddTrustedByToken(r.Context(), req.TrustToken, peer)
		if errkind.Of(err) == errkind.Invalid {
			return Errorf(http.StatusForbidden, "not authorized: %v", err)
		}
	case s.Trusted(r):
		cert := peer
		if req.Certificate != "" {
			if cert, err = trust.ParseCert(req.Certificate); err != nil {
				return Error(err)
			}
		}
		if cert == nil {
			return Errorf(http.StatusBadRequest, "no certificate given, and the connection carries none")
		}
		added, err = e.AddTrusted(r.Context(), req.Name, cert)
	case peer == nil:
		return Errorf(http.StatusForbidden, "not authorized: connect with a client certificate to be trusted")
	default:
		return Errorf(http.StatusForbidden, "not authorized: the client's certificate is not trusted, and no trust token was given")
	}
	if err != nil {
		return Error(err)
	}
	return Created(api.Path("certificates", added.Fingerprint))
}

// peerCertificate is the certificate the client connected with over TLS.
func peerCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// postToken makes a trust token for a client called name, for a trusted
// client (silo config trust add h2:NAME): the answer carries it whole.
func (s *Server) postToken(e *engine.Engine, r *http.Request, name string) Response {
	if !s.Trusted(r) {
		return Errorf(http.StatusForbidden, "not authorized: only a trusted client may make trust tokens")
	}
	tok, err := e.CreateTrustToken(r.Context(), name)
	if err != nil {
		return Error(err)
	}
	return Sync(api.CertificateAddToken(*tok))
}
