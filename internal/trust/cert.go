// Package trust holds what mutual TLS between silo hosts rests on: the
// self-signed certificates that servers and clients are known by, their
// fingerprints, and the one-time tokens through which a server comes to
// trust a client.
package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/silo-dev/silo/errkind"
)

// validity is how long a certificate made here lasts, as LXD's do.
const validity = 10 * 365 * 24 * time.Hour

// Fingerprint is the SHA-256 of a certificate's DER bytes in hex: what LXD
// and Incus show and pin.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// KeyPair loads the certificate and key at certPath and keyPath, making
// them first if the key does not exist: an ECDSA P-384 key and a
// self-signed certificate good for both server and client authentication.
// The key is written last, so a certificate without its key is what a
// crash left, and is made anew.
func KeyPair(certPath, keyPath string) (tls.Certificate, error) {
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		if err := generate(certPath, keyPath); err != nil {
			return tls.Certificate{}, err
		}
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load certificate %s: %w", certPath, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("parse certificate %s: %w", certPath, err)
		}
	}
	return pair, nil
}

// generate writes a new key and certificate, each under a temporary name
// renamed into place: the certificate first, the key last.
func generate(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"silo"}, CommonName: "root@" + host},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("make certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	if err := writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// EncodeCert is a certificate in PEM.
func EncodeCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// ParseCert reads one certificate from PEM, or from base64 DER as LXD's
// API carries it.
func ParseCert(text string) (*x509.Certificate, error) {
	der := []byte(text)
	if block, _ := pem.Decode([]byte(text)); block != nil {
		der = block.Bytes
	} else if b, err := decodeBase64(strings.TrimSpace(text)); err == nil {
		der = b
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "not a certificate: %w", err)
	}
	return cert, nil
}

// WriteCert saves a certificate in PEM at path.
func WriteCert(path string, der []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeAtomic(path, []byte(EncodeCert(der)), 0o644)
}

// ReadCert loads the PEM certificate at path.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errkind.FromErrno(fmt.Errorf("certificate: %w", err))
	}
	cert, err := ParseCert(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}
