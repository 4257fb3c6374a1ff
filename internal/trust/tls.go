package trust

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/silo-dev/silo/errkind"
)

// ServerConfig is the TLS of a silo server: TLS 1.3 only, and a client
// certificate asked for but not required, since an untrusted client may
// still read /1.0 and present a token; the server decides by fingerprint.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// ClientConfig is the TLS of a client that knows its server only by the
// fingerprint of its self-signed certificate: the chain is not checked
// against any authority, the certificate is compared with the pin.
func ClientConfig(cert tls.Certificate, serverFingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errkind.Wrap(errkind.Invalid, "the server sent no certificate")
			}
			if got := Fingerprint(raw[0]); got != serverFingerprint {
				return &MismatchError{Want: serverFingerprint, Got: got}
			}
			return nil
		},
	}
}

// MismatchError is a server whose certificate is not the one pinned.
type MismatchError struct{ Want, Got string }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the server's certificate %.12s is not the one expected (%.12s): refusing to talk to it", e.Got, e.Want)
}
