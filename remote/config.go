// Package remote keeps a client's remotes, the other silo hosts it talks
// to over mutual TLS, and reads the REMOTE: references people write in
// front of an instance's or an image's name, as with lxc.
//
// Its files live in the user's silo config directory, as lxc's in
// ~/.config/lxc: config.yml (the remotes and the default one),
// client.crt and client.key (the certificate the client is known by,
// made by the first `silo remote add`), and servercerts/NAME.crt (each
// server's certificate, pinned when the remote was added).
package remote

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/trust"
)

// Local is the built-in remote: this host, reached directly, not through a
// server.
const Local = "local"

// EnvDir overrides the config directory, for tests and for several
// identities on one account.
const EnvDir = "SILO_CONF"

// Remote is one server the client knows.
type Remote struct {
	Addr     string `yaml:"addr" json:"addr"`         // https://host:port
	Protocol string `yaml:"protocol" json:"protocol"` // "silo"
}

// Config is the client's config file.
type Config struct {
	dir           string
	DefaultRemote string             `yaml:"default-remote,omitempty"`
	Remotes       map[string]*Remote `yaml:"remotes,omitempty"`
}

// Dir is the config directory: $SILO_CONF, else silo under the user's
// config directory (~/.config/silo).
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config directory: %w", err)
	}
	return filepath.Join(base, "silo"), nil
}

// Load reads the config in dir; a directory without one gives an empty
// config, whose default remote is local.
func Load(dir string) (*Config, error) {
	c := &Config{dir: dir, Remotes: map[string]*Remote{}}
	data, err := os.ReadFile(filepath.Join(dir, "config.yml"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := yaml.Unmarshal(data, c); err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "%s: %v", filepath.Join(dir, "config.yml"), err)
	}
	if c.Remotes == nil {
		c.Remotes = map[string]*Remote{}
	}
	return c, nil
}

// Save writes the config, whole or not at all.
func (c *Config) Save() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, "config.yml")
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// Default is the remote a reference without one names.
func (c *Config) Default() string {
	if c.DefaultRemote == "" {
		return Local
	}
	return c.DefaultRemote
}

// Names lists the remotes, local first.
func (c *Config) Names() []string {
	names := []string{Local}
	for n := range c.Remotes {
		names = append(names, n)
	}
	slices.Sort(names[1:])
	return names
}

// Has says whether name is a remote, local included.
func (c *Config) Has(name string) bool {
	_, ok := c.Remotes[name]
	return name == Local || ok
}

// Get returns the remote called name; local has no entry.
func (c *Config) Get(name string) (*Remote, error) {
	r, ok := c.Remotes[name]
	if !ok {
		if name == Local {
			return nil, errkind.Wrap(errkind.Invalid, "remote local is this host, not a server")
		}
		return nil, errkind.Wrap(errkind.NotFound, "remote %q not found", name)
	}
	return r, nil
}

// ClientCertificate is the certificate the client is known by, made the
// first time it is needed.
func (c *Config) ClientCertificate() (tls.Certificate, error) {
	return trust.KeyPair(filepath.Join(c.dir, "client.crt"), filepath.Join(c.dir, "client.key"))
}

// serverCertPath is where the certificate of the remote called name is
// pinned.
func (c *Config) serverCertPath(name string) string {
	return filepath.Join(c.dir, "servercerts", name+".crt")
}

// TLS is the client's TLS config for the remote called name: its own
// certificate, and the server's pinned.
func (c *Config) TLS(name string) (*tls.Config, error) {
	if _, err := c.Get(name); err != nil {
		return nil, err
	}
	cert, err := c.ClientCertificate()
	if err != nil {
		return nil, err
	}
	srv, err := trust.ReadCert(c.serverCertPath(name))
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", name, err)
	}
	return trust.ClientConfig(cert, trust.Fingerprint(srv.Raw)), nil
}

// checkAddr reads a remote's address: https://host[:port], port 8443 when
// left out, as lxc takes it.
func checkAddr(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", errkind.Wrap(errkind.Invalid, "remote address %q: write https://HOST[:PORT]", addr)
	}
	if u.Port() == "" {
		u.Host += ":8443"
	}
	return "https://" + u.Host, nil
}
