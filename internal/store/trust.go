package store

import (
	"time"
)

// Certificate is a client certificate the server trusts, keyed by its
// fingerprint.
type Certificate struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	Certificate string    `json:"certificate"` // PEM
	Added       time.Time `json:"added"`
}

// Token is a pending trust token, keyed by the hash of its secret: the
// secret itself is never stored. A used token stays, marked, so that its
// second use is told apart from a secret never issued.
type Token struct {
	SecretHash string    `json:"secret_hash"`
	ClientName string    `json:"client_name"`
	Created    time.Time `json:"created"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Used       time.Time `json:"used,omitzero"`
}

// ServerConfig returns the server's config keys.
func (t *Tx) ServerConfig() (map[string]string, error) {
	out := map[string]string{}
	err := t.tx.Bucket(bucketServerConfig).ForEach(func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	return out, err
}

// SetServerConfig sets key to value, or removes it when value is empty.
func (t *Tx) SetServerConfig(key, value string) error {
	b := t.tx.Bucket(bucketServerConfig)
	if value == "" {
		return b.Delete([]byte(key))
	}
	return b.Put([]byte(key), []byte(value))
}

// Certificate returns the trusted certificate with this fingerprint.
func (t *Tx) Certificate(fingerprint string) (*Certificate, error) {
	return get[Certificate](t, bucketCertificates, fingerprint, "certificate")
}

// PutCertificate writes c.
func (t *Tx) PutCertificate(c *Certificate) error {
	return put(t, bucketCertificates, c.Fingerprint, c)
}

// DeleteCertificate removes the certificate with this fingerprint.
func (t *Tx) DeleteCertificate(fingerprint string) error {
	return del(t, bucketCertificates, fingerprint, "certificate")
}

// Certificates lists the trusted certificates by fingerprint.
func (t *Tx) Certificates() ([]*Certificate, error) {
	return all[Certificate](t, bucketCertificates)
}

// Token returns the token whose secret hashes to hash.
func (t *Tx) Token(hash string) (*Token, error) {
	return get[Token](t, bucketTokens, hash, "trust token")
}

// PutToken writes tok.
func (t *Tx) PutToken(tok *Token) error { return put(t, bucketTokens, tok.SecretHash, tok) }

// DeleteToken removes the token whose secret hashes to hash.
func (t *Tx) DeleteToken(hash string) error { return del(t, bucketTokens, hash, "trust token") }

// Tokens lists the tokens.
func (t *Tx) Tokens() ([]*Token, error) { return all[Token](t, bucketTokens) }
