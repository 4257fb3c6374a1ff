package api

import "time"

// CertificateTypeClient is the type of a client certificate, the only kind
// silo trusts.
const CertificateTypeClient = "client"

// Certificate is a client certificate the server trusts, as LXD's
// /1.0/certificates/FINGERPRINT.
type Certificate struct {
	// Name is the client's name, given when it was trusted.
	Name string `json:"name"`
	// Type is always "client".
	Type string `json:"type"`
	// Certificate is the certificate in PEM.
	Certificate string `json:"certificate"`
	// Fingerprint is the SHA-256 of the certificate, in hex.
	Fingerprint string `json:"fingerprint"`
	// AddedAt is when the server came to trust it.
	AddedAt time.Time `json:"added_at"`
}

// CertificatesPost is the body of POST /1.0/certificates (LXD's): a
// trusted client gives Certificate and Name; a client not yet trusted
// gives its TrustToken (the token as `silo config trust add` printed it,
// or its secret alone) and is trusted with the certificate it connected
// with.
type CertificatesPost struct {
	Name        string `json:"name,omitempty"`
	Type        string `json:"type,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	TrustToken  string `json:"trust_token,omitempty"`
	// Password is where LXD clients older than trust_token send the
	// token; it is read as TrustToken is.
	Password string `json:"password,omitempty"`
	// Token, Restricted and Projects are what LXD clients send besides:
	// silo makes no token through the API, and has no projects, so
	// they must be false and empty.
	Token      bool     `json:"token,omitempty"`
	Restricted bool     `json:"restricted,omitempty"`
	Projects   []string `json:"projects,omitempty"`
}
