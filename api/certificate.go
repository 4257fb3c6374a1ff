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
	// Token asks a trusted client's server for a trust token for a
	// client called Name, which the answer carries
	// (CertificateAddToken).
	Token bool `json:"token,omitempty"`
	// Restricted and Projects are what LXD clients send besides: silo
	// has no projects, so they must be false and empty.
	Restricted bool     `json:"restricted,omitempty"`
	Projects   []string `json:"projects,omitempty"`
}

// CertificateAddToken is a trust token, as Incus's: what a client needs to
// find the server, pin its certificate, and be let in once. `silo config
// trust add` prints it as base64 JSON.
type CertificateAddToken struct {
	// ClientName is the name the client will be trusted under.
	ClientName string `json:"client_name"`
	// Fingerprint is the server's certificate's.
	Fingerprint string `json:"fingerprint"`
	// Addresses are where the server listens, host:port.
	Addresses []string `json:"addresses"`
	// Secret is what the client presents, once.
	Secret string `json:"secret"`
	// ExpiresAt is when the token lapses; zero for never.
	ExpiresAt time.Time `json:"expires_at"`
}
