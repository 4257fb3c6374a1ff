package trust

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
)

// Token is what `silo config trust add` prints, in Incus's shape: enough
// for a client to find the server, pin its certificate before it sends
// anything, and prove to it that an administrator let it in.
type Token api.CertificateAddToken

// NewSecret is 32 random bytes in hex.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// HashSecret is how a server keeps a secret: a copy of its store then lets
// no one in. A secret has 256 random bits, so no slow hash is needed.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// String encodes the token as base64 JSON.
func (t *Token) String() string {
	data, _ := json.Marshal(t)
	return base64.StdEncoding.EncodeToString(data)
}

// ParseToken decodes what String made.
func ParseToken(s string) (*Token, error) {
	data, err := decodeBase64(strings.TrimSpace(s))
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "trust token: not base64")
	}
	t := new(Token)
	if err := json.Unmarshal(data, t); err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "trust token: not a token: %v", err)
	}
	if t.Secret == "" || t.Fingerprint == "" || t.ClientName == "" {
		return nil, errkind.Wrap(errkind.Invalid, "trust token: lacks its secret, client name or server fingerprint")
	}
	return t, nil
}

// decodeBase64 takes padded or raw, standard or URL base64.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errkind.Wrap(errkind.Invalid, "not base64")
}
