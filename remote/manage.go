package remote

import (
	"os"
	"strings"

	"github.com/silo-dev/silo/errkind"
)

// checkName refuses a remote name that a reference could not carry.
func checkName(name string) error {
	if name == "" || len(name) > 63 || strings.ContainsAny(name, ":/ \t\n") || strings.HasPrefix(name, ".") {
		return errkind.Wrap(errkind.Invalid, "invalid remote name %q: no ':', '/' or spaces, at most 63", name)
	}
	if name == Local {
		return errkind.Wrap(errkind.AlreadyExists, "remote local is built in")
	}
	return nil
}

// Remove forgets the remote called name and its pinned certificate. The
// default remote goes back to local if it was name.
func (c *Config) Remove(name string) error {
	if name == Local {
		return errkind.Wrap(errkind.Invalid, "remote local is built in and cannot be removed")
	}
	if _, err := c.Get(name); err != nil {
		return err
	}
	delete(c.Remotes, name)
	if c.DefaultRemote == name {
		c.DefaultRemote = ""
	}
	if err := c.Save(); err != nil {
		return err
	}
	if err := os.Remove(c.serverCertPath(name)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Switch makes name the default remote.
func (c *Config) Switch(name string) error {
	if !c.Has(name) {
		return errkind.Wrap(errkind.NotFound, "remote %q not found", name)
	}
	c.DefaultRemote = name
	if name == Local {
		c.DefaultRemote = ""
	}
	return c.Save()
}

// Rename gives the remote called old the name new, its pinned certificate
// with it.
func (c *Config) Rename(old, new string) error {
	if old == Local {
		return errkind.Wrap(errkind.Invalid, "remote local is built in and cannot be renamed")
	}
	r, err := c.Get(old)
	if err != nil {
		return err
	}
	if err := checkName(new); err != nil {
		return err
	}
	if c.Has(new) {
		return errkind.Wrap(errkind.AlreadyExists, "remote %q already exists", new)
	}
	// The certificate first: a crash then leaves the old entry with no
	// pin, which the next command reports, rather than a pin lost.
	if err := os.Rename(c.serverCertPath(old), c.serverCertPath(new)); err != nil {
		return err
	}
	delete(c.Remotes, old)
	c.Remotes[new] = r
	if c.DefaultRemote == old {
		c.DefaultRemote = new
	}
	return c.Save()
}
